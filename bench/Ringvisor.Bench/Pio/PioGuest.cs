// The PIO benchmark's guest: a 6-instruction CPL-0 stub iretq's to 64-bit code at CPL 3 with IOPL = 3 (so the loop
// runs natively even where KVM emulates CPL 0), which does `out dx, al` N times to the bench port and once to the
// done port.
// The same image and entry state drive both the C# engine and bench/native/pio_loop.c.
using Iced.Intel;
using Ringvisor.Core.Cpu;
using static Iced.Intel.AssemblerRegisters;

namespace Ringvisor.Bench.Pio;

internal static class PioGuest
{
    public const ulong MemorySize = 2 << 20;
    public const ushort BenchPort = 0x500;
    public const ushort DonePort = 0x501;
    public const ulong Pml4 = 0x1000;
    public const ulong Pdpt = 0x2000;
    public const ulong PageDirectory = 0x3000;
    public const ulong Gdt = 0x500;
    public const ushort GdtLimit = 0x37;
    public const ulong Tss = 0x4000;

    /// <summary>
    /// The TSS carries a full, all-zero I/O permission bitmap (every port allowed) after its 0x68-byte body, ended by an
    /// 0xFF byte (Intel SDM Vol. 1 §19.5.2). IOPL = 3 alone should suffice, but a host that runs CPL 3 natively and
    /// emulates the resulting #GP was seen to check the bitmap anyway (ports past a 0x67-limit TSS faulted).
    /// </summary>
    public const ulong TssIoBitmapOffset = 0x68;
    public const uint TssLimit = (uint)TssIoBitmapOffset + 0x2000;
    public const ulong Code = 0x1_0000;
    public const ulong UserCode = 0x1_1000;
    public const ulong StackTop = 0x7_0000;
    public const ushort KernelCodeSelector = 0x08;
    public const ushort KernelDataSelector = 0x10;
    public const ushort UserDataSelector = 0x18 | 3;
    public const ushort UserCodeSelector = 0x20 | 3;
    public const ushort TssSelector = 0x28;
    public const ulong UserRflags = 0x3002; // IOPL = 3 (Intel SDM Vol. 1 §3.4.3.3), reserved bit 1

    // Page-table entry bits (Intel SDM Vol. 3A §4.5): present, writable, user, 2 MiB page.
    private const ulong Present = 1, Writable = 2, User = 4, PageSize = 0x80;

    /// <summary>The memory image from guest-physical 0: page tables, GDT, TSS and code.</summary>
    public static byte[] BuildImage(int iterations)
    {
        var stub = AssembleStub();
        var code = Assemble(iterations);
        byte[] image = new byte[(int)UserCode + code.Length];
        Put(image, Pml4, Pdpt | Present | Writable | User);
        Put(image, Pdpt, PageDirectory | Present | Writable | User);
        Put(image, PageDirectory, 0 | Present | Writable | User | PageSize);
        Put(image, Gdt + 0x08, 0x00AF_9A00_0000_FFFF); // ring-0 64-bit code
        Put(image, Gdt + 0x10, 0x00CF_9200_0000_FFFF); // ring-0 data
        Put(image, Gdt + 0x18, 0x00CF_F200_0000_FFFF); // ring-3 data
        Put(image, Gdt + 0x20, 0x00AF_FA00_0000_FFFF); // ring-3 64-bit code
        Put(image, Gdt + TssSelector, TssLimit | ((Tss & 0xFF_FFFF) << 16) | (0x89UL << 40)); // available 64-bit TSS
        BitConverter.TryWriteBytes(image.AsSpan((int)Tss + 0x66, 2), (ushort)TssIoBitmapOffset);
        image[(int)(Tss + TssLimit)] = 0xFF;
        stub.CopyTo(image, (int)Code);
        code.CopyTo(image, (int)UserCode);
        return image;
    }

    /// <summary>Where the vCPU starts: the CPL-0 stub that drops to CPL 3, or (<paramref name="cpl"/> 0) the loop itself.</summary>
    public static ulong EntryPoint(int cpl) => cpl == 0 ? UserCode : Code;

    /// <summary>The entry state (64-bit, CPL 0); pio_loop.c builds the same one from its arguments.</summary>
    public static CpuState EntryState(int cpl)
    {
        var s = new CpuState();
        s.Registers.Rip = EntryPoint(cpl);
        s.Registers.Rsp = StackTop;
        s.Registers.Rflags = CpuRegisters.RflagsReserved;
        var sys = SystemRegisters.Reset();
        sys.Cs = SegmentRegister.Flat(KernelCodeSelector, code: true, longMode: true);
        sys.Ds = SegmentRegister.Flat(KernelDataSelector, code: false);
        sys.Es = sys.Fs = sys.Gs = sys.Ss = sys.Ds;
        sys.Tr = new SegmentRegister { Selector = TssSelector, Base = Tss, Limit = TssLimit, Type = 0xB, Present = true };
        sys.Gdt = new DescriptorTable { Base = Gdt, Limit = GdtLimit };
        sys.Idt = new DescriptorTable();
        sys.Cr0 = SystemRegisters.Cr0Pe | SystemRegisters.Cr0Mp | SystemRegisters.Cr0Et | SystemRegisters.Cr0Ne |
                  SystemRegisters.Cr0Wp | SystemRegisters.Cr0Pg;
        sys.Cr3 = Pml4;
        sys.Cr4 = SystemRegisters.Cr4Pae | SystemRegisters.Cr4Osfxsr | SystemRegisters.Cr4Osxmmexcpt;
        sys.Efer = SystemRegisters.EferSce | SystemRegisters.EferLme | SystemRegisters.EferLma;
        s.System = sys;
        return s;
    }

    /// <summary>Arguments for pio_loop.c after IMAGE: MEMSIZE RIP RSP CR3 GDT_BASE GDT_LIMIT TSS_BASE TSS_LIMIT BENCH_PORT DONE_PORT.</summary>
    public static string[] NativeArguments(int cpl) =>
    [
        $"0x{MemorySize:X}", $"0x{EntryPoint(cpl):X}", $"0x{StackTop:X}", $"0x{Pml4:X}", $"0x{Gdt:X}", $"0x{GdtLimit:X}", $"0x{Tss:X}", $"0x{TssLimit:X}",
        $"0x{BenchPort:X}", $"0x{DonePort:X}",
    ];

    private static byte[] AssembleStub()
    {
        var a = new Assembler(64);
        a.push(UserDataSelector);
        a.push((int)StackTop);
        a.push((int)UserRflags);
        a.push(UserCodeSelector);
        a.push((int)UserCode);
        a.iretq();
        return Encode(a, Code);
    }

    private static byte[] Assemble(int iterations)
    {
        var a = new Assembler(64);
        var loop = a.CreateLabel();
        var spin = a.CreateLabel();
        a.mov(ecx, iterations);
        a.mov(dx, BenchPort);
        a.Label(ref loop);
        a.@out(dx, al);
        a.dec(ecx);
        a.jnz(loop);
        a.mov(dx, DonePort);
        a.@out(dx, al);
        a.Label(ref spin);
        a.jmp(spin);
        return Encode(a, UserCode);
    }

    private static byte[] Encode(Assembler a, ulong address)
    {
        using var ms = new MemoryStream();
        a.Assemble(new StreamCodeWriter(ms), address);
        return ms.ToArray();
    }

    private static void Put(byte[] image, ulong offset, ulong value) =>
        BitConverter.TryWriteBytes(image.AsSpan((int)offset, 8), value);
}
