// The KVM oracle for the legacy paging modes: 32-bit paging (4 KiB and PSE 4 MiB pages) and PAE paging (4 KiB and
// 2 MiB pages, NX), from a 32-bit protected-mode guest. Same method as MmuKvmDifferentialTests.
using Iced.Intel;
using Ringvisor.Core.Bus;
using Ringvisor.Core.Cpu;
using Ringvisor.Core.Memory;
using Ringvisor.Emulator.Memory;
using static Iced.Intel.AssemblerRegisters;
using static Ringvisor.Emulator.Tests.Memory.PageTableBuilder;

namespace Ringvisor.Emulator.Tests.Memory;

public class MmuKvmLegacyDifferentialTests
{
    private const ulong Gdt = 0x1000;
    private const ulong Tss = 0x1100;
    private const ulong Idt = 0x2000;
    private const ulong FaultHandler = 0x3000;
    private const ulong OtherHandler = 0x3100;
    private const ulong KernelCode = 0x3200;
    private const ulong UserCode = 0x4000;
    private const ulong UserStackTop = 0x6000;
    private const ulong KernelStackTop = 0x9000;
    private const ulong Result = KvmOracle.Result;
    private const ulong Frame4K = 0x20_0000;
    private const ulong FrameLarge = 0x40_0000; // 4 MiB aligned, so also 2 MiB aligned

    /// <summary>32-bit: PDE 0x201, PTE 3. PAE: PDPTE 2, PDE 2, PTE 3. Its own entries at every level.</summary>
    private const ulong Target = 0x8040_3000;
    private const ulong Offset = 0x10;

    private const ushort KernelCs = 0x08, KernelDs = 0x10, UserDs = 0x18, UserCs = 0x20, TssSel = 0x28;

    public enum LegacyShape
    {
        TwoLevel4K,
        TwoLevel4M,
        Pae4K,
        Pae2M,
    }

    public static TheoryData<LegacyShape, ulong, ulong, int, bool, MemoryAccessKind> Cases()
    {
        var data = new TheoryData<LegacyShape, ulong, ulong, int, bool, MemoryAccessKind>();
        foreach (var kind in new[] { MemoryAccessKind.Read, MemoryAccessKind.Write, MemoryAccessKind.Execute })
        {
            for (int bits = 0; bits < 4; bits++)
            {
                ulong leaf = P | ((bits & 1) != 0 ? US : 0) | ((bits & 2) != 0 ? RW : 0);
                data.Add(LegacyShape.TwoLevel4K, leaf, Upper, 3, true, kind);
            }

            data.Add(LegacyShape.TwoLevel4K, RW | US, Upper, 3, true, kind); // not present
            data.Add(LegacyShape.TwoLevel4K, P | RW | US, P | RW, 3, true, kind); // supervisor PDE
            data.Add(LegacyShape.TwoLevel4K, P | RW | US, P | US, 3, true, kind); // read-only PDE
            data.Add(LegacyShape.TwoLevel4M, P | RW | US, Upper, 3, true, kind);
            data.Add(LegacyShape.TwoLevel4M, P | US, Upper, 3, true, kind);
            data.Add(LegacyShape.TwoLevel4M, P | RW | US | (1UL << 21), Upper, 3, true, kind); // reserved (PSE-36, MAXPHYADDR 40)

            for (int bits = 0; bits < 8; bits++)
            {
                ulong leaf = P | ((bits & 1) != 0 ? US : 0) | ((bits & 2) != 0 ? RW : 0) | ((bits & 4) != 0 ? XD : 0);
                data.Add(LegacyShape.Pae4K, leaf, Upper, 3, true, kind);
            }

            data.Add(LegacyShape.Pae4K, RW | US, Upper, 3, true, kind); // not present
            data.Add(LegacyShape.Pae4K, P | RW | US, P | RW, 3, true, kind); // supervisor PDE
            data.Add(LegacyShape.Pae4K, P | RW | US, Upper | XD, 3, true, kind); // XD in the PDE
            data.Add(LegacyShape.Pae4K, P | RW | US | (1UL << 45), Upper, 3, true, kind); // above MAXPHYADDR
            data.Add(LegacyShape.Pae4K, P | RW | US | (1UL << 62), Upper, 3, true, kind); // PAE: 62:M reserved
            data.Add(LegacyShape.Pae2M, P | RW | US, Upper, 3, true, kind);
            data.Add(LegacyShape.Pae2M, P | RW | US | (1UL << 13), Upper, 3, true, kind); // reserved in a 2 MiB PDE
        }

        // CR0.WP at CPL 0 (emulated by the host: few cases).
        data.Add(LegacyShape.TwoLevel4K, P, Upper, 0, true, MemoryAccessKind.Write);
        data.Add(LegacyShape.TwoLevel4K, P, Upper, 0, false, MemoryAccessKind.Write);
        data.Add(LegacyShape.Pae4K, P | US, Upper, 0, true, MemoryAccessKind.Write);
        data.Add(LegacyShape.Pae4K, P | US, Upper, 0, false, MemoryAccessKind.Write);
        return data;
    }

    [KvmLegacyPagingTheory]
    [MemberData(nameof(Cases))]
    public void TryTranslate_SameLegacyTablesAsKvmGuest_SameFaultAndAccessedDirtyBits(
        LegacyShape shape, ulong leaf, ulong upper, int cpl, bool wp, MemoryAccessKind kind)
    {
        bool pae = shape is LegacyShape.Pae4K or LegacyShape.Pae2M;
        using var kvmMemory = GuestMemory.Create(16UL << 20);
        using var mmuMemory = GuestMemory.Create(16UL << 20);
        ulong[] kvmEntries = Build(kvmMemory, shape, leaf, upper, kind, cpl, out ulong root, out ulong targetPhysical);
        ulong[] mmuEntries = Build(mmuMemory, shape, leaf, upper, kind, cpl, out _, out _);

        var (status, errorCode, cr2) = KvmOracle.Run(kvmMemory, State(root, cpl, wp, pae));
        Assert.True(status is 0 or 1, $"guest ended with status {status:X} (2 = an exception other than #PF)");

        using var mmu = new Mmu(mmuMemory, new IoBus("mmio", 1UL << 52));
        Assert.True(mmu.SetPagingState(new PagingState
        {
            Cr0 = ControlCr0(wp),
            Cr3 = root,
            Cr4 = ControlCr4(pae),
            Efer = pae ? PagingState.EferNxe : 0,
            Cpl = cpl,
            Rflags = 2,
        }));
        Assert.Equal(pae ? PagingMode.Pae : PagingMode.TwoLevel, mmu.Mode);
        bool ok = mmu.TryTranslate(Target + Offset, kind, out ulong physical);

        Assert.Equal(status == 0, ok);
        if (ok)
        {
            Assert.Equal(targetPhysical, physical);
            for (int i = 0; i < kvmEntries.Length; i++)
            {
                ulong k = ReadEntry(kvmMemory, kvmEntries[i], pae) & (A | D);
                ulong m = ReadEntry(mmuMemory, mmuEntries[i], pae) & (A | D);
                Assert.True(k == m, $"entry {i} (0 = PDE): A/D on KVM {k:X}, MMU {m:X}");
            }
        }
        else
        {
            Assert.Equal(MmuFaultKind.PageFault, mmu.LastFault.Kind);
            Assert.Equal((PageFaultErrorCode)errorCode, mmu.LastFault.ErrorCode);
            Assert.Equal(cr2, mmu.LastFault.Address);
        }
    }

    private static ulong ControlCr0(bool wp) =>
        SystemRegisters.Cr0Pe | SystemRegisters.Cr0Mp | SystemRegisters.Cr0Et | SystemRegisters.Cr0Ne |
        SystemRegisters.Cr0Pg | (wp ? SystemRegisters.Cr0Wp : 0);

    private static ulong ControlCr4(bool pae) => SystemRegisters.Cr4Pse | (pae ? SystemRegisters.Cr4Pae : 0);

    private static ulong ReadEntry(GuestMemory memory, ulong gpa, bool pae)
    {
        if (pae)
        {
            Assert.True(memory.TryRead(gpa, out ulong v));
            return v;
        }

        Assert.True(memory.TryRead(gpa, out uint w));
        return w;
    }

    /// <summary>Writes the scenario; returns the target's PDE and (for 4 KiB pages) PTE addresses.</summary>
    private static ulong[] Build(GuestMemory memory, LegacyShape shape, ulong leaf, ulong upper, MemoryAccessKind kind, int cpl,
        out ulong root, out ulong targetPhysical)
    {
        bool pae = shape is LegacyShape.Pae4K or LegacyShape.Pae2M;
        var t = new PageTableBuilder(memory);
        root = t.Root;
        for (ulong page = Gdt; page <= Result; page += 0x1000)
        {
            ulong flags = page switch
            {
                UserCode => P | US,
                UserStackTop - 0x1000 => P | RW | US,
                _ => P | RW,
            };
            if (pae)
            {
                t.MapPae4K(page, page, flags | A | D);
            }
            else
            {
                t.Map32_4K(page, page, (uint)(flags | A | D));
            }
        }

        WriteGdtTssIdt(memory);
        KvmOracle.Load(memory, FaultHandler, KvmOracle.Assemble(32, FaultHandler, a =>
        {
            a.pop(eax); // the error code
            a.mov(__dword_ptr[(uint)Result], eax);
            a.mov(eax, cr2);
            a.mov(__dword_ptr[(uint)Result + 8], eax);
            a.mov(al, 1);
            a.@out(KvmExitPort.Port, al);
            a.hlt();
        }));
        KvmOracle.Load(memory, OtherHandler, KvmOracle.Assemble(32, OtherHandler, a =>
        {
            a.mov(al, 2);
            a.@out(KvmExitPort.Port, al);
            a.hlt();
        }));
        ulong code = cpl == 3 ? UserCode : KernelCode;
        KvmOracle.Load(memory, code, KvmOracle.Assemble(32, code, a =>
        {
            a.mov(ebx, (uint)(Target + Offset));
            switch (kind)
            {
                case MemoryAccessKind.Read: a.mov(eax, __dword_ptr[ebx]); break;
                case MemoryAccessKind.Write: a.mov(__dword_ptr[ebx], eax); break;
                default: a.jmp(ebx); break;
            }

            a.mov(al, 0);
            a.@out(KvmExitPort.Port, al);
            a.hlt();
        }));

        ulong[] entries;
        switch (shape)
        {
            case LegacyShape.TwoLevel4K:
                t.Map32_4K(Target, Frame4K, (uint)leaf, (uint)upper);
                entries = [t.Entry32(Target, 2), t.Entry32(Target, 1)];
                targetPhysical = Frame4K + Offset;
                break;
            case LegacyShape.TwoLevel4M:
                ulong slot = t.Map32_4M(Target & ~0x3F_FFFFUL, FrameLarge, (uint)(leaf & ~(1UL << 21)));
                t.Write32(slot, t.Read32(slot) | (uint)(leaf & (1UL << 21)));
                entries = [slot];
                targetPhysical = FrameLarge + (Target & 0x3F_FFFF) + Offset;
                break;
            case LegacyShape.Pae4K:
                t.MapPae4K(Target, Frame4K, leaf, upper);
                entries = [t.EntryPae(Target, 2), t.EntryPae(Target, 1)];
                targetPhysical = Frame4K + Offset;
                break;
            default:
                entries = [t.MapPae2M(Target & ~0x1F_FFFFUL, FrameLarge, leaf)];
                targetPhysical = FrameLarge + (Target & 0x1F_FFFF) + Offset;
                break;
        }

        KvmOracle.Load(memory, targetPhysical, KvmOracle.Assemble(32, Target + Offset, a =>
        {
            a.mov(al, 0);
            a.@out(KvmExitPort.Port, al);
            a.hlt();
        }));
        return entries;
    }

    private static CpuState State(ulong root, int cpl, bool wp, bool pae)
    {
        var s = new CpuState();
        var sys = SystemRegisters.Reset();
        var kcs = SegmentRegister.Flat(KernelCs, code: true);
        var kds = SegmentRegister.Flat(KernelDs, code: false);
        var ucs = SegmentRegister.Flat(UserCs | 3, code: true);
        ucs.Dpl = 3;
        var uds = SegmentRegister.Flat(UserDs | 3, code: false);
        uds.Dpl = 3;
        sys.Cs = cpl == 3 ? ucs : kcs;
        sys.Ss = cpl == 3 ? uds : kds;
        sys.Ds = sys.Es = sys.Fs = sys.Gs = sys.Ss;
        sys.Tr = new SegmentRegister { Selector = TssSel, Base = Tss, Limit = 0x67, Type = 0xB, Present = true };
        sys.Gdt = new DescriptorTable { Base = Gdt, Limit = 0x2F };
        sys.Idt = new DescriptorTable { Base = Idt, Limit = 0x7FF };
        sys.Cr0 = ControlCr0(wp);
        sys.Cr3 = root;
        sys.Cr4 = ControlCr4(pae);
        sys.Efer = pae ? SystemRegisters.EferNxe : 0;
        s.System = sys;
        s.Registers.Rip = cpl == 3 ? UserCode : KernelCode;
        s.Registers.Rsp = cpl == 3 ? UserStackTop : KernelStackTop;
        s.Registers.Rflags = CpuRegisters.RflagsReserved | (3UL << 12); // IOPL 3: CPL 3 may write the exit port
        return s;
    }

    private static void WriteGdtTssIdt(GuestMemory memory)
    {
        // Flat 32-bit code/data descriptors, DPL 0 and 3 (Intel SDM Vol. 3A Figure 3-8), a 32-bit TSS (§7.2.2).
        Write64(memory, Gdt, 0);
        Write64(memory, Gdt + KernelCs, 0x00CF_9A00_0000_FFFF);
        Write64(memory, Gdt + KernelDs, 0x00CF_9200_0000_FFFF);
        Write64(memory, Gdt + UserDs, 0x00CF_F200_0000_FFFF);
        Write64(memory, Gdt + UserCs, 0x00CF_FA00_0000_FFFF);
        Write64(memory, Gdt + TssSel, 0x67 | ((Tss & 0xFF_FFFF) << 16) | (0x89UL << 40));
        Assert.True(memory.TryWrite(Tss + 4, (uint)KernelStackTop)); // ESP0
        Assert.True(memory.TryWrite(Tss + 8, (uint)KernelDs)); // SS0

        // 32-bit interrupt gates (§6.11): #PF to its handler, everything else to the "unexpected" one.
        for (ulong v = 0; v < 256; v++)
        {
            ulong handler = v == 14 ? FaultHandler : OtherHandler;
            Write64(memory, Idt + (v * 8), (handler & 0xFFFF) | ((ulong)KernelCs << 16) | (0x8EUL << 40) | ((handler >> 16 & 0xFFFF) << 48));
        }
    }

    private static void Write64(GuestMemory memory, ulong gpa, ulong value) => Assert.True(memory.TryWrite(gpa, value));
}
