// A standalone bt vCPU over 16 MiB of guest RAM, with helpers that put it in long mode (identity-mapped with 2 MiB
// pages), protected mode or real mode, and assemble test code with Iced.
using Iced.Intel;
using Ringvisor.Core.Bus;
using Ringvisor.Core.Cpu;
using Ringvisor.Core.Interrupts;
using Ringvisor.Core.Memory;
using Ringvisor.Emulator;

namespace Ringvisor.Emulator.Tests.Interpreter;

internal sealed class GuestHarness : IDisposable
{
    public const ulong Pml4 = 0x1000;
    public const ulong Pdpt = 0x2000;
    public const ulong Pd = 0x3000;
    public const ulong GdtBase = 0x500;
    public const ulong IdtBase = 0x4000;
    public const ulong TssBase = 0x6000;
    public const ulong CodeBase = 0x10000;
    public const ulong StackTop = 0x80000;

    // GDT layout used by the long-mode helpers.
    public const ushort KernelCs = 0x08, KernelDs = 0x10, UserCs32 = 0x18, UserDs = 0x20, UserCs = 0x28, TssSel = 0x30;

    public GuestHarness(IReadOnlyList<ILocalInterruptController>? apics = null, BtOptions? options = null)
    {
        Memory = GuestMemory.Create(16 << 20);
        Pio = new IoBus("pio", 0x10000);
        Mmio = new IoBus("mmio", 1UL << 52);
        Host = new CpuHost(Memory, Pio, Mmio)
        {
            LocalApics = apics,
            VcpuCount = apics?.Count ?? 1,
            Options = options ?? new BtOptions { CollectStats = true, ConsoleSink = b => Console.AddRange(b.ToArray()) },
        };
        Vcpu = new BtVcpu(Host, 0);
    }

    public GuestMemory Memory { get; }

    public IoBus Pio { get; }

    public IoBus Mmio { get; }

    public CpuHost Host { get; }

    public BtVcpu Vcpu { get; }

    public List<byte> Console { get; } = [];

    public void Write(ulong gpa, ReadOnlySpan<byte> data) => Assert.Equal(MemoryAccessResult.Ok, Memory.Write(gpa, data));

    public void Write64(ulong gpa, ulong v) => Assert.True(Memory.TryWrite(gpa, v));

    public ulong Read64(ulong gpa)
    {
        Assert.True(Memory.TryRead(gpa, out ulong v));
        return v;
    }

    public static byte[] Assemble(int bitness, ulong ip, Action<Assembler> build)
    {
        var a = new Assembler(bitness);
        build(a);
        using var ms = new MemoryStream();
        a.Assemble(new StreamCodeWriter(ms), ip);
        return ms.ToArray();
    }

    /// <summary>Writes 64-bit code at <paramref name="gpa"/>.</summary>
    public void Code64(ulong gpa, Action<Assembler> build) => Write(gpa, Assemble(64, gpa, build));

    /// <summary>8-byte code/data descriptor.</summary>
    public static ulong Descriptor(ulong @base, uint limit, byte access, byte flags) =>
        (limit & 0xFFFFUL) | ((@base & 0xFFFFFF) << 16) | ((ulong)access << 40) | (((ulong)(limit >> 16) & 0xF) << 48) |
        ((ulong)(flags & 0xF) << 52) | (((@base >> 24) & 0xFF) << 56);

    /// <summary>Long mode at CPL 0 with identity paging of the first 16 MiB, a GDT, a 64-bit TSS and an empty IDT.</summary>
    public void SetupLongMode(ulong rip = CodeBase)
    {
        Write64(Pml4, Pdpt | 0x7);
        Write64(Pdpt, Pd | 0x7);
        for (ulong i = 0; i < 8; i++)
        {
            // 2 MiB pages, present, writable, user.
            Write64(Pd + i * 8, (i << 21) | 0x87);
        }

        Write64(GdtBase + 0x00, 0);
        Write64(GdtBase + 0x08, Descriptor(0, 0xFFFFF, 0x9B, 0xA)); // kernel code64
        Write64(GdtBase + 0x10, Descriptor(0, 0xFFFFF, 0x93, 0xC)); // kernel data
        Write64(GdtBase + 0x18, Descriptor(0, 0xFFFFF, 0xFB, 0xC)); // user code32
        Write64(GdtBase + 0x20, Descriptor(0, 0xFFFFF, 0xF3, 0xC)); // user data
        Write64(GdtBase + 0x28, Descriptor(0, 0xFFFFF, 0xFB, 0xA)); // user code64
        Write64(GdtBase + 0x30, Descriptor(TssBase, 0x67, 0x8B, 0x0)); // 64-bit TSS (busy)
        Write64(GdtBase + 0x38, 0);

        var s = new CpuState();
        s.Registers.Rip = rip;
        s.Registers.Rsp = StackTop;
        s.Registers.Rflags = 2;
        s.System.Cs = SegmentRegister.Flat(KernelCs, code: true, longMode: true);
        s.System.Ds = s.System.Es = s.System.Ss = s.System.Fs = s.System.Gs = SegmentRegister.Flat(KernelDs, code: false);
        s.System.Gdt = new DescriptorTable { Base = GdtBase, Limit = 0x3F };
        s.System.Idt = new DescriptorTable { Base = IdtBase, Limit = 0 };
        s.System.Tr = new SegmentRegister { Selector = TssSel, Base = TssBase, Limit = 0x67, Type = 0xB, Present = true };
        s.System.Cr0 = SystemRegisters.Cr0Pe | SystemRegisters.Cr0Pg | SystemRegisters.Cr0Et | SystemRegisters.Cr0Ne | SystemRegisters.Cr0Wp | SystemRegisters.Cr0Mp;
        s.System.Cr3 = Pml4;
        s.System.Cr4 = SystemRegisters.Cr4Pae | SystemRegisters.Cr4Osfxsr | SystemRegisters.Cr4Osxmmexcpt;
        s.System.Efer = SystemRegisters.EferLme | SystemRegisters.EferLma | SystemRegisters.EferSce | SystemRegisters.EferNxe;
        Vcpu.SetState(s);
    }

    /// <summary>Installs a 64-bit interrupt gate for <paramref name="vector"/> and sets the IDT limit to cover 256 vectors.</summary>
    public void SetGate64(int vector, ulong handler, int dpl = 0, int ist = 0, bool trap = false)
    {
        ulong lo = (handler & 0xFFFF) | ((ulong)KernelCs << 16) | ((ulong)ist << 32) | ((ulong)(trap ? 0xF : 0xE) << 40) |
                   ((ulong)dpl << 45) | (1UL << 47) | (((handler >> 16) & 0xFFFF) << 48);
        Write64(IdtBase + (ulong)vector * 16, lo);
        Write64(IdtBase + (ulong)vector * 16 + 8, handler >> 32);
        var s = Vcpu.GetState();
        s.System.Idt = new DescriptorTable { Base = IdtBase, Limit = 16 * 256 - 1 };
        Vcpu.SetState(s);
    }

    public VcpuExit Run() => Vcpu.Run();

    public CpuState State => Vcpu.GetState();

    public void Dispose()
    {
        Vcpu.Dispose();
        Memory.Dispose();
    }
}
