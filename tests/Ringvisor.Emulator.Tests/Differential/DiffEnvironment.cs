// Builds the fixed part of a differential guest in one GuestMemory: 4-level page tables (identity map of the first
// 2 MiB with 4 KiB pages and per-page rights), a GDT with 64-bit kernel/user segments and a TSS with RSP0 and a full
// I/O permission bitmap, an IDT whose stubs report the vector on a port and then IRETQ to a CPL-3 stub that dumps
// the FPU/SSE state, and the CPL-3 start state of a case. Intel SDM Vol. 3A §4.5 (paging), §3.4.5 (descriptors),
// §7.7 (64-bit TSS), §6.14 (64-bit IDT gates and frames).
using Iced.Intel;
using Ringvisor.Core.Cpu;
using Ringvisor.Core.Memory;
using static Iced.Intel.AssemblerRegisters;
using static Ringvisor.Emulator.Tests.Differential.DiffLayout;

namespace Ringvisor.Emulator.Tests.Differential;

internal static class DiffEnvironment
{
    // Page-table entry bits (SDM Vol. 3A Table 4-19): present, writable, user, accessed, dirty. A/D are preset so
    // that neither engine has a reason to write the tables.
    private const ulong P = 1, Rw = 2, Us = 4, Ad = 0x60;

    /// <summary>Vectors that push an error code (SDM Vol. 3A Table 6-1).</summary>
    public static bool HasErrorCode(int vector) => vector is 8 or (>= 10 and <= 14) or 17 or 21 or 29 or 30;

    public static void Build(GuestMemory memory)
    {
        W64(memory, Pml4, Pdpt | P | Rw | Us);
        W64(memory, Pdpt, Pd | P | Rw | Us);
        W64(memory, Pd, Pt | P | Rw | Us);
        for (ulong page = 0; page < 0x200000; page += 0x1000)
        {
            ulong flags = PageFlags(page);
            W64(memory, Pt + ((page >> 12) * 8), flags == 0 ? 0 : page | flags | Ad);
        }

        // GDT: null, kernel code64/data, user data/code64 (SDM Vol. 3A Figure 3-8), 16-byte 64-bit TSS descriptor.
        W64(memory, Gdt, 0);
        W64(memory, Gdt + KernelCs, 0x00AF_9A00_0000_FFFF);
        W64(memory, Gdt + KernelDs, 0x00CF_9200_0000_FFFF);
        W64(memory, Gdt + (UserDs & ~3UL), 0x00CF_F200_0000_FFFF);
        W64(memory, Gdt + (UserCs & ~3UL), 0x00AF_FA00_0000_FFFF);
        W64(memory, Gdt + TssSel, (TssLimit & 0xFFFF) | ((Tss & 0xFF_FFFF) << 16) | (0x89UL << 40) | ((ulong)(TssLimit >> 16) << 48));
        W64(memory, Gdt + TssSel + 8, 0);

        // TSS: RSP0 (+4) and the I/O map base (+0x66) pointing right after the 0x68-byte TSS; the bitmap is all
        // zero (every port allowed) and ends with the mandatory 0xFF byte (SDM Vol. 1 §19.5.2).
        Assert.Equal(MemoryAccessResult.Ok, memory.Fill(Tss, (int)TssLimit, 0));
        W64(memory, Tss + 4, KernelStackTop);
        Assert.True(memory.TryWrite(Tss + 0x66, (ushort)0x68));
        Assert.True(memory.TryWrite(Tss + TssLimit, (byte)0xFF));

        for (int v = 0; v < 256; v++)
        {
            ulong handler = Handlers + (ulong)(Math.Min(v, 32) * HandlerStride);
            ulong dpl = v is 3 or 4 ? 3UL : 0UL; // INT3 and INTO are allowed from CPL 3, as under Linux
            ulong low = (handler & 0xFFFF) | ((ulong)KernelCs << 16) | (0x8EUL << 40) | (dpl << 45) | (((handler >> 16) & 0xFFFF) << 48);
            W64(memory, Idt + ((ulong)v * 16), low);
            W64(memory, Idt + ((ulong)v * 16) + 8, handler >> 32);
        }

        for (int v = 0; v <= 32; v++)
        {
            ulong at = Handlers + (ulong)(v * HandlerStride);
            byte port = v < 32 ? (byte)(ExceptionPortBase + v) : OtherVectorPort;
            bool error = v < 32 && HasErrorCode(v);
            byte[] stub = Assemble(at, a =>
            {
                a.@out(port, al);
                if (error)
                {
                    a.add(rsp, 8);
                }

                a.mov(__qword_ptr[rsp], (int)DumpStub);
                a.iretq();
            });
            Assert.True(stub.Length <= HandlerStride);
            Assert.Equal(MemoryAccessResult.Ok, memory.Write(at, stub));
        }

        Assert.Equal(MemoryAccessResult.Ok, memory.Write(DumpStub, Assemble(DumpStub, a =>
        {
            a.fxsave64(__[FxOut]);
            a.@out(DumpPort, al);
        })));
    }

    /// <summary>The address of the final OUT of the dump stub (fxsave64 with a disp32 is 8 bytes).</summary>
    public static readonly ulong DumpOut = DumpStub + (ulong)Assemble(DumpStub, a => a.fxsave64(__[FxOut])).Length;

    private static ulong PageFlags(ulong page) => page switch
    {
        >= Pml4 and < KernelStackTop => P | Rw,
        >= CodeBase and < CodeBase + CodeMax => P | Us,
        DumpStub => P | Us,
        >= Stack and < Stack + StackSize => P | Rw | Us,
        >= Data and < Data + DataSize => P | Rw | Us,
        ReadOnlyPage => P | Us,
        NotPresentPage => 0,
        SupervisorPage => P | Rw,
        FxIn & ~0xFFFUL => P | Rw | Us,
        _ => 0,
    };

    /// <summary>The CPL-3 long-mode state every case starts from (registers filled in per case).</summary>
    public static CpuState UserState()
    {
        var s = new CpuState();
        var sys = SystemRegisters.Reset();
        var ucs = SegmentRegister.Flat(UserCs, code: true, longMode: true);
        ucs.Dpl = 3;
        var uds = SegmentRegister.Flat(UserDs, code: false);
        uds.Dpl = 3;
        sys.Cs = ucs;
        sys.Ss = sys.Ds = sys.Es = sys.Fs = sys.Gs = uds;
        sys.Tr = new SegmentRegister { Selector = TssSel, Base = Tss, Limit = TssLimit, Type = 0xB, Present = true };
        sys.Ldt = new SegmentRegister { Unusable = true };
        sys.Gdt = new DescriptorTable { Base = Gdt, Limit = TssSel + 15 };
        sys.Idt = new DescriptorTable { Base = Idt, Limit = 0xFFF };
        sys.Cr0 = SystemRegisters.Cr0Pe | SystemRegisters.Cr0Mp | SystemRegisters.Cr0Et | SystemRegisters.Cr0Ne |
                  SystemRegisters.Cr0Wp | SystemRegisters.Cr0Pg;
        sys.Cr3 = Pml4;
        sys.Cr4 = SystemRegisters.Cr4Pae | SystemRegisters.Cr4Osfxsr | SystemRegisters.Cr4Osxmmexcpt;
        sys.Efer = SystemRegisters.EferSce | SystemRegisters.EferLme | SystemRegisters.EferLma | SystemRegisters.EferNxe;
        s.System = sys;
        return s;
    }

    public static CpuRegisters ToRegisters(ReadOnlySpan<ulong> g, ulong rip, ulong rflags) => new()
    {
        Rax = g[0], Rcx = g[1], Rdx = g[2], Rbx = g[3], Rsp = g[4], Rbp = g[5], Rsi = g[6], Rdi = g[7],
        R8 = g[8], R9 = g[9], R10 = g[10], R11 = g[11], R12 = g[12], R13 = g[13], R14 = g[14], R15 = g[15],
        Rip = rip,
        Rflags = rflags,
    };

    public static ulong[] FromRegisters(in CpuRegisters r) =>
        [r.Rax, r.Rcx, r.Rdx, r.Rbx, r.Rsp, r.Rbp, r.Rsi, r.Rdi, r.R8, r.R9, r.R10, r.R11, r.R12, r.R13, r.R14, r.R15];

    public static byte[] Assemble(ulong address, Action<Assembler> build)
    {
        var a = new Assembler(64);
        build(a);
        using var ms = new MemoryStream();
        a.Assemble(new StreamCodeWriter(ms), address);
        return ms.ToArray();
    }

    private static void W64(GuestMemory memory, ulong gpa, ulong value) => Assert.True(memory.TryWrite(gpa, value));
}
