// Hardware task switches in 32-bit protected mode (SDM Vol. 3A chapter 7): JMP to a TSS, CALL through a task gate
// and IRET back through the previous-task link, an exception through an IDT task gate, and the #TS/#GP checks.
using Iced.Intel;
using Ringvisor.Core.Cpu;
using static Iced.Intel.AssemblerRegisters;

namespace Ringvisor.Emulator.Tests.Interpreter;

public sealed class TaskSwitchTests
{
    private const ushort Code = 0x08, Data = 0x10, TssA = 0x18, TssB = 0x20, GateB = 0x28, TssShort = 0x30, TssD = 0x38;
    private const ulong Gdt = 0x500, Idt = 0x1000, TssABase = 0x6000, TssBBase = 0x7000, TssDBase = 0x7800;
    private const ulong CodeA = 0x10000, CodeB = 0x20000, CodeD = 0x28000, Handler = 0x30000, Out = 0x40000;

    // 32-bit TSS offsets (SDM Vol. 3A §7.2.1, Figure 7-2).
    private const ulong TssLink = 0x00, TssEip = 0x20, TssEflags = 0x24, TssEax = 0x28, TssEbx = 0x34, TssEsp = 0x38;
    private const ulong TssCs = 0x4C, TssSs = 0x50, TssDs = 0x54, TssEs = 0x48;
    private const ulong EflagsNt = 1 << 14;
    private const ulong Cr0Ts = 8;

    private static ulong Read32(GuestHarness g, ulong gpa) => g.Read64(gpa) & 0xFFFF_FFFF;

    private static ulong Read16(GuestHarness g, ulong gpa) => g.Read64(gpa) & 0xFFFF;

    private static void Write32(GuestHarness g, ulong gpa, uint v) => g.Write(gpa, BitConverter.GetBytes(v));

    private static int DescriptorType(GuestHarness g, ushort sel) => (int)((g.Read64(Gdt + sel) >> 40) & 0xF);

    private static void Code32(GuestHarness g, ulong gpa, Action<Assembler> build) =>
        g.Write(gpa, GuestHarness.Assemble(32, gpa, build));

    /// <summary>A TSS whose task starts at <paramref name="eip"/> with flat CS/SS/DS/ES, EFLAGS=2 and the given EAX/ESP.</summary>
    private static void WriteTss(GuestHarness g, ulong tss, uint eip, uint eax, uint esp)
    {
        g.Write(tss, new byte[0x68]);
        Write32(g, tss + TssEip, eip);
        Write32(g, tss + TssEflags, 2);
        Write32(g, tss + TssEax, eax);
        Write32(g, tss + TssEsp, esp);
        Write32(g, tss + TssCs, Code);
        Write32(g, tss + TssSs, Data);
        Write32(g, tss + TssDs, Data);
        Write32(g, tss + TssEs, Data);
    }

    /// <summary>A far JMP (EA) or CALL (9A) ptr16:32: Iced's assembler has no far-pointer form, so the bytes go in as data.</summary>
    private static void FarBranch(Assembler a, bool call, ushort sel)
    {
        a.db(call ? (byte)0x9A : (byte)0xEA, 0, 0, 0, 0, (byte)sel, (byte)(sel >> 8));
    }

    /// <summary>32-bit protected mode without paging at CPL 0, running task A (TR = TssA, busy), an IDT of 32 gates.</summary>
    private static GuestHarness Setup()
    {
        var g = new GuestHarness();
        g.Write64(Gdt + 0x00, 0);
        g.Write64(Gdt + Code, GuestHarness.Descriptor(0, 0xFFFFF, 0x9B, 0xC));
        g.Write64(Gdt + Data, GuestHarness.Descriptor(0, 0xFFFFF, 0x93, 0xC));
        g.Write64(Gdt + TssA, GuestHarness.Descriptor(TssABase, 0x67, 0x8B, 0)); // busy 32-bit TSS
        g.Write64(Gdt + TssB, GuestHarness.Descriptor(TssBBase, 0x67, 0x89, 0)); // available 32-bit TSS
        g.Write64(Gdt + GateB, ((ulong)TssB << 16) | (0x85UL << 40)); // task gate to TssB, DPL 0
        g.Write64(Gdt + TssShort, GuestHarness.Descriptor(0x7400, 0x50, 0x89, 0)); // limit below 67H
        g.Write64(Gdt + TssD, GuestHarness.Descriptor(TssDBase, 0x67, 0x89, 0));
        g.Write(TssABase, new byte[0x68]);
        WriteTss(g, TssBBase, (uint)CodeB, 0xB0B0, 0x70000);
        WriteTss(g, TssDBase, (uint)CodeD, 0xD0D0, 0x78000);

        var s = new CpuState();
        s.Registers.Rip = CodeA;
        s.Registers.Rsp = 0x80000;
        s.Registers.Rflags = 2;
        s.System.Cs = SegmentRegister.Flat(Code, code: true);
        s.System.Ds = s.System.Es = s.System.Ss = s.System.Fs = s.System.Gs = SegmentRegister.Flat(Data, code: false);
        s.System.Gdt = new DescriptorTable { Base = Gdt, Limit = 0x3F };
        s.System.Idt = new DescriptorTable { Base = Idt, Limit = 32 * 8 - 1 };
        s.System.Tr = new SegmentRegister { Selector = TssA, Base = TssABase, Limit = 0x67, Type = 0xB, Present = true };
        s.System.Ldt = new SegmentRegister { Unusable = true };
        s.System.Cr0 = SystemRegisters.Cr0Pe | SystemRegisters.Cr0Et | SystemRegisters.Cr0Ne;
        g.Vcpu.SetState(s);
        return g;
    }

    /// <summary>A 32-bit interrupt gate for <paramref name="vector"/> to a handler that stores its error code and halts.</summary>
    private static void ErrorCodeHandler(GuestHarness g, int vector)
    {
        g.Write64(Idt + (ulong)vector * 8, (Handler & 0xFFFF) | ((ulong)Code << 16) | (0x8EUL << 40) | ((Handler >> 16) << 48));
        Code32(g, Handler, a =>
        {
            a.pop(eax);
            a.mov(__dword_ptr[Out + 0x20], eax);
            a.hlt();
        });
    }

    [Fact]
    public void JmpToTss_SavesOldStateLoadsNewAndMovesBusyBit()
    {
        using var g = Setup();
        Code32(g, CodeA, a =>
        {
            a.mov(eax, 0x1111_1111);
            a.mov(ebx, 0x2222_2222);
            FarBranch(a, call: false, TssB);
            a.hlt();
        });
        ulong afterJmp = CodeA + 5 + 5 + 7;
        Code32(g, CodeB, a =>
        {
            a.mov(__dword_ptr[Out], eax);
            a.mov(__dword_ptr[Out + 4], esp);
            a.hlt();
        });

        Assert.Equal(VcpuExitReason.Halted, g.Run().Reason);

        // The old task's state went into TSS A, with EIP after the JMP.
        Assert.Equal(0x1111_1111UL, Read32(g, TssABase + TssEax));
        Assert.Equal(0x2222_2222UL, Read32(g, TssABase + TssEbx));
        Assert.Equal(afterJmp, Read32(g, TssABase + TssEip));
        Assert.Equal((ulong)Data, Read16(g, TssABase + TssDs));

        // The new task runs with TSS B's registers.
        Assert.Equal(0xB0B0UL, Read32(g, Out));
        Assert.Equal(0x70000UL, Read32(g, Out + 4));
        var st = g.State;
        Assert.Equal(TssB, st.System.Tr.Selector);
        Assert.Equal(TssBBase, st.System.Tr.Base);
        Assert.NotEqual(0UL, st.System.Cr0 & Cr0Ts);
        Assert.Equal(0UL, st.Registers.Rflags & EflagsNt);

        // JMP does not nest: A is no longer busy, B is; no back link is written.
        Assert.Equal(0x9, DescriptorType(g, TssA));
        Assert.Equal(0xB, DescriptorType(g, TssB));
        Assert.Equal(0UL, Read16(g, TssBBase + TssLink));
    }

    [Fact]
    public void CallTaskGate_ThenIret_ReturnsThroughBackLink()
    {
        using var g = Setup();
        Code32(g, CodeA, a =>
        {
            a.mov(eax, 0xA0A0);
            FarBranch(a, call: true, GateB);
            a.mov(__dword_ptr[Out + 8], eax);
            a.pushfd();
            a.pop(ecx);
            a.mov(__dword_ptr[Out + 12], ecx);
            a.hlt();
        });
        Code32(g, CodeB, a =>
        {
            a.pushfd();
            a.pop(ecx);
            a.mov(__dword_ptr[Out], ecx);
            a.str(dx);
            a.mov(__dword_ptr[Out + 4], edx);
            a.mov(eax, 0x5555);
            a.iretd();
        });

        Assert.Equal(VcpuExitReason.Halted, g.Run().Reason);

        // In task B: NT set, TR = B, back link = A.
        Assert.NotEqual(0UL, Read32(g, Out) & EflagsNt);
        Assert.Equal((ulong)TssB, Read32(g, Out + 4) & 0xFFFF);
        Assert.Equal((ulong)TssA, Read16(g, TssBBase + TssLink));

        // Back in task A: its own EAX (IRET saved B's 0x5555 into TSS B), NT clear, A busy and B free again.
        Assert.Equal(0xA0A0UL, Read32(g, Out + 8));
        Assert.Equal(0UL, Read32(g, Out + 12) & EflagsNt);
        Assert.Equal(0x5555UL, Read32(g, TssBBase + TssEax));
        Assert.Equal(TssA, g.State.System.Tr.Selector);
        Assert.Equal(0xB, DescriptorType(g, TssA));
        Assert.Equal(0x9, DescriptorType(g, TssB));
    }

    [Fact]
    public void GeneralProtection_ThroughIdtTaskGate_PushesErrorCodeOnNewTaskStack()
    {
        using var g = Setup();
        g.Write64(Idt + 13 * 8, ((ulong)TssD << 16) | (0x85UL << 40));
        Code32(g, CodeA, a =>
        {
            a.mov(eax, 0x48);
            a.mov(ds, ax);
            a.hlt();
        });
        ulong faultEip = CodeA + 5;
        Code32(g, CodeD, a =>
        {
            a.pop(ecx);
            a.mov(__dword_ptr[Out], ecx);
            a.mov(__dword_ptr[Out + 4], esp);
            a.hlt();
        });

        Assert.Equal(VcpuExitReason.Halted, g.Run().Reason);

        // #GP(0x48): the selector past the GDT limit, popped from task D's stack (which started at 0x78000).
        Assert.Equal(0x48UL, Read32(g, Out));
        Assert.Equal(0x78000UL, Read32(g, Out + 4));
        Assert.Equal(faultEip, Read32(g, TssABase + TssEip));
        Assert.Equal((ulong)TssA, Read16(g, TssDBase + TssLink));
        Assert.Equal(TssD, g.State.System.Tr.Selector);
        Assert.Equal(0xB, DescriptorType(g, TssA));
        Assert.Equal(0xB, DescriptorType(g, TssD));
    }

    [Fact]
    public void JmpToTss_LimitBelow67h_RaisesInvalidTssWithSelector()
    {
        using var g = Setup();
        ErrorCodeHandler(g, 10);
        Code32(g, CodeA, a =>
        {
            FarBranch(a, call: false, TssShort);
            a.hlt();
        });

        Assert.Equal(VcpuExitReason.Halted, g.Run().Reason);
        Assert.Equal((ulong)TssShort, Read32(g, Out + 0x20));
        Assert.Equal(TssA, g.State.System.Tr.Selector);
        Assert.Equal(0xB, DescriptorType(g, TssA));
        Assert.Equal(0x9, DescriptorType(g, TssShort));
    }

    [Fact]
    public void CallToBusyTss_RaisesGeneralProtectionWithSelector()
    {
        using var g = Setup();
        ErrorCodeHandler(g, 13);
        Code32(g, CodeA, a =>
        {
            FarBranch(a, call: true, TssA);
            a.hlt();
        });

        Assert.Equal(VcpuExitReason.Halted, g.Run().Reason);
        Assert.Equal((ulong)TssA, Read32(g, Out + 0x20));
        Assert.Equal(TssA, g.State.System.Tr.Selector);
        Assert.Equal(0UL, g.State.System.Cr0 & Cr0Ts);
    }

    [Fact]
    public void JmpToTss_BadCodeSelectorInNewTask_RaisesInvalidTssAfterTheSwitch()
    {
        using var g = Setup();
        ErrorCodeHandler(g, 10);
        Write32(g, TssBBase + TssCs, Data); // a data segment as CS
        Code32(g, CodeA, a =>
        {
            FarBranch(a, call: false, TssB);
            a.hlt();
        });

        Assert.Equal(VcpuExitReason.Halted, g.Run().Reason);

        // The fault belongs to the new task: TR is already B, and the handler got #TS(CS selector).
        Assert.Equal((ulong)Data, Read32(g, Out + 0x20));
        Assert.Equal(TssB, g.State.System.Tr.Selector);
    }

    [Fact]
    public void CallTss_ConformingCodeWithRpl3_RunsAtCpl3AndReturns()
    {
        using var g = Setup();
        const ushort conforming = 0x40, userData = 0x4B;
        g.Write64(Gdt + conforming, GuestHarness.Descriptor(0, 0xFFFFF, 0x9F, 0xC)); // conforming code, DPL 0
        g.Write64(Gdt + (userData & ~3UL), GuestHarness.Descriptor(0, 0xFFFFF, 0xF3, 0xC)); // data, DPL 3
        var st = g.State;
        st.System.Gdt = new DescriptorTable { Base = Gdt, Limit = 0x4F };
        g.Vcpu.SetState(st);
        Write32(g, TssBBase + TssCs, conforming | 3);
        foreach (ulong off in (ReadOnlySpan<ulong>)[TssSs, TssDs, TssEs])
        {
            Write32(g, TssBBase + off, userData);
        }

        Code32(g, CodeA, a =>
        {
            FarBranch(a, call: true, TssB);
            a.mov(__dword_ptr[Out + 4], 1);
            a.hlt();
        });
        Code32(g, CodeB, a =>
        {
            a.mov(eax, cs);
            a.mov(__dword_ptr[Out], eax);
            a.iretd();
        });

        Assert.Equal(VcpuExitReason.Halted, g.Run().Reason);

        // CS.RPL (3) may differ from a conforming segment's DPL (0); the task runs at CPL 3, then IRET returns to A.
        Assert.Equal((ulong)(conforming | 3), Read32(g, Out) & 0xFFFF);
        Assert.Equal(1UL, Read32(g, Out + 4));
        Assert.Equal(TssA, g.State.System.Tr.Selector);
    }

    [Fact]
    public void JmpToTss_TrapFlagInTss_RaisesDebugTrapAtNewTaskEntryWithDr6Bt()
    {
        using var g = Setup();
        g.Write(TssBBase + 0x64, [1, 0]); // T flag (SDM Vol. 3A §7.2.1)
        g.Write64(Idt + 8, (Handler & 0xFFFF) | ((ulong)Code << 16) | (0x8EUL << 40) | ((Handler >> 16) << 48));
        Code32(g, Handler, a =>
        {
            a.pop(eax);
            a.mov(__dword_ptr[Out], eax);
            a.mov(eax, dr6);
            a.mov(__dword_ptr[Out + 4], eax);
            a.hlt();
        });
        Code32(g, CodeA, a =>
        {
            FarBranch(a, call: false, TssB);
            a.hlt();
        });
        Code32(g, CodeB, a => a.hlt());

        Assert.Equal(VcpuExitReason.Halted, g.Run().Reason);

        // #DB is a trap taken in task B before its first instruction: the saved EIP is B's entry, DR6.BT is set.
        Assert.Equal(CodeB, Read32(g, Out));
        Assert.NotEqual(0UL, Read32(g, Out + 4) & (1 << 15));
        Assert.Equal(TssB, g.State.System.Tr.Selector);
    }

    [Fact]
    public void JmpToTss_WithPaging_LoadsNewTasksCr3()
    {
        using var g = Setup();
        const ulong pdA = 0x2000, pdB = 0x3000, tssCr3 = 0x1C;
        const ulong pse4M = 0x83; // present, writable, 4 MiB page (SDM Vol. 3A §4.3, Table 4-4)

        // Both directories identity-map the first 4 MiB; at 4 MiB, A maps physical 4 MiB and B physical 8 MiB.
        g.Write64(pdA, pse4M);
        g.Write64(pdA + 4, (4UL << 20) | pse4M);
        g.Write64(pdB, pse4M);
        g.Write64(pdB + 4, (8UL << 20) | pse4M);
        g.Write64(4UL << 20, 0xAAAA);
        g.Write64(8UL << 20, 0xBBBB);
        Write32(g, TssBBase + tssCr3, (uint)pdB);
        var st = g.State;
        st.System.Cr0 |= SystemRegisters.Cr0Pg;
        st.System.Cr3 = pdA;
        st.System.Cr4 = SystemRegisters.Cr4Pse;
        g.Vcpu.SetState(st);

        Code32(g, CodeA, a =>
        {
            a.mov(eax, __dword_ptr[0x400000]);
            a.mov(__dword_ptr[Out + 4], eax);
            FarBranch(a, call: false, TssB);
            a.hlt();
        });
        Code32(g, CodeB, a =>
        {
            a.mov(eax, __dword_ptr[0x400000]);
            a.mov(__dword_ptr[Out], eax);
            a.hlt();
        });

        Assert.Equal(VcpuExitReason.Halted, g.Run().Reason);

        // The same linear address reads through A's directory before the switch and B's after it.
        Assert.Equal(0xAAAAUL, Read32(g, Out + 4));
        Assert.Equal(0xBBBBUL, Read32(g, Out));
        Assert.Equal(pdB, g.State.System.Cr3);
    }
}
