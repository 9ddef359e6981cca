// Shared fixture code for the MMU tests: guest RAM, an MMIO bus with a recording device, and paging-state helpers.
using Ringvisor.Core.Bus;
using Ringvisor.Core.Memory;
using Ringvisor.Emulator.Memory;

namespace Ringvisor.Emulator.Tests.Memory;

internal sealed class MmuTestBed : IDisposable
{
    public const ulong RamSize = 32UL << 20;
    public const ulong MmioBase = 0xD000_0000;
    public const ulong MmioSize = 0x1_0000;

    public const ulong Cr0PePg = 1UL | PagingState.Cr0Pg;
    public const ulong Cr4Pae = PagingState.Cr4Pae;
    public const ulong EferLmaNxe = PagingState.EferLma | PagingState.EferNxe | (1UL << 8);

    public MmuTestBed()
    {
        Memory = GuestMemory.Create(RamSize);
        Bus = new IoBus("mmio", 1UL << 52);
        Device = new RecordingDevice();
        Bus.Register(MmioBase, MmioSize, Device, "recorder");
        System = new MemorySystem(Memory, Bus);
        Mmu = new Mmu(System);
        Tables = new PageTableBuilder(Memory);
    }

    public GuestMemory Memory { get; }

    public IoBus Bus { get; }

    public RecordingDevice Device { get; }

    public MemorySystem System { get; }

    public Mmu Mmu { get; }

    public PageTableBuilder Tables { get; }

    /// <summary>4-level paging with NXE on, CR0.WP on, CPL 0.</summary>
    public static PagingState LongMode(ulong cr3, ulong extraCr4 = 0, bool wp = true, int cpl = 0, ulong rflags = 2, bool nxe = true) => new()
    {
        Cr0 = Cr0PePg | (wp ? PagingState.Cr0Wp : 0),
        Cr3 = cr3,
        Cr4 = Cr4Pae | extraCr4,
        Efer = nxe ? EferLmaNxe : EferLmaNxe & ~PagingState.EferNxe,
        Cpl = cpl,
        Rflags = rflags,
    };

    public static PagingState Pae(ulong cr3, ulong extraCr4 = 0, bool nxe = true, int cpl = 0) => new()
    {
        Cr0 = Cr0PePg | PagingState.Cr0Wp,
        Cr3 = cr3,
        Cr4 = Cr4Pae | extraCr4,
        Efer = nxe ? PagingState.EferNxe : 0,
        Cpl = cpl,
        Rflags = 2,
    };

    public static PagingState TwoLevel(ulong cr3, bool pse = true, int cpl = 0) => new()
    {
        Cr0 = Cr0PePg | PagingState.Cr0Wp,
        Cr3 = cr3,
        Cr4 = pse ? PagingState.Cr4Pse : 0,
        Cpl = cpl,
        Rflags = 2,
    };

    public void UseLongMode(ulong extraCr4 = 0, bool wp = true, int cpl = 0, bool nxe = true) =>
        Assert.True(Mmu.SetPagingState(LongMode(Tables.Root, extraCr4, wp, cpl, 2, nxe)));

    public byte[] ReadPhysical(ulong physical, int length)
    {
        var b = new byte[length];
        Assert.Equal(MemoryAccessResult.Ok, Memory.Read(physical, b));
        return b;
    }

    public void Dispose()
    {
        Mmu.Dispose();
        Memory.Dispose();
    }
}
