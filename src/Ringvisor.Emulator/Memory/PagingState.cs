// The control-register bits that decide how linear addresses translate (Intel SDM Vol. 3A §4.1, §2.5).
using Ringvisor.Core.Cpu;

namespace Ringvisor.Emulator.Memory;

/// <summary>
/// What the CPU tells its <see cref="Mmu"/>: CR0, CR3, CR4, EFER, CPL and RFLAGS (for AC). Only the bits listed
/// as constants below matter; others are ignored.
/// </summary>
public struct PagingState
{
    public ulong Cr0;
    public ulong Cr3;
    public ulong Cr4;
    public ulong Efer;
    public int Cpl;
    public ulong Rflags;

    /// <summary>CR0.WP (bit 16): supervisor writes honour R/W (SDM Vol. 3A §2.5).</summary>
    public const ulong Cr0Wp = 1UL << 16;

    /// <summary>CR0.NW (bit 29) and CR0.CD (bit 30): a change reloads PAE PDPTEs (SDM Vol. 3A §4.4.1).</summary>
    public const ulong Cr0Nw = 1UL << 29;
    public const ulong Cr0Cd = 1UL << 30;

    /// <summary>CR0.PG (bit 31).</summary>
    public const ulong Cr0Pg = 1UL << 31;

    /// <summary>CR4.PSE (bit 4): 4 MiB pages under 32-bit paging.</summary>
    public const ulong Cr4Pse = 1UL << 4;

    /// <summary>CR4.PAE (bit 5).</summary>
    public const ulong Cr4Pae = 1UL << 5;

    /// <summary>CR4.PGE (bit 7): global pages survive CR3 loads.</summary>
    public const ulong Cr4Pge = 1UL << 7;

    /// <summary>CR4.PCIDE (bit 17). Not implemented by the MMU: the core must not advertise PCID.</summary>
    public const ulong Cr4Pcide = 1UL << 17;

    /// <summary>CR4.SMEP (bit 20).</summary>
    public const ulong Cr4Smep = 1UL << 20;

    /// <summary>CR4.SMAP (bit 21).</summary>
    public const ulong Cr4Smap = 1UL << 21;

    /// <summary>EFER.LMA (bit 10).</summary>
    public const ulong EferLma = 1UL << 10;

    /// <summary>EFER.NXE (bit 11).</summary>
    public const ulong EferNxe = 1UL << 11;

    /// <summary>RFLAGS.AC (bit 18): with CR4.SMAP, lets explicit supervisor accesses reach user pages.</summary>
    public const ulong RflagsAc = 1UL << 18;

    /// <summary>Every CR0 bit whose change flushes the whole TLB (SDM Vol. 3A §4.10.4.1).</summary>
    public const ulong Cr0FlushBits = Cr0Pg | Cr0Wp;

    /// <summary>Every CR4 bit whose change flushes the whole TLB (SDM Vol. 3A §4.10.4.1).</summary>
    public const ulong Cr4FlushBits = Cr4Pse | Cr4Pae | Cr4Pge | Cr4Pcide | Cr4Smep | Cr4Smap;

    /// <summary>CR0 bits whose change reloads the PAE PDPTEs when the result is PAE paging (SDM Vol. 3A §4.4.1).</summary>
    public const ulong Cr0PdpteReloadBits = Cr0Pg | Cr0Cd | Cr0Nw;

    /// <summary>CR4 bits whose change reloads the PAE PDPTEs when the result is PAE paging (SDM Vol. 3A §4.4.1).</summary>
    public const ulong Cr4PdpteReloadBits = Cr4Pae | Cr4Pge | Cr4Pse | Cr4Smep;

    /// <summary>EFER bits whose change flushes the whole TLB (NXE changes which bit 63 means; LMA the mode).</summary>
    public const ulong EferFlushBits = EferLma | EferNxe;

    public readonly PagingMode Mode =>
        (Cr0 & Cr0Pg) == 0 ? PagingMode.None
        : (Cr4 & Cr4Pae) == 0 ? PagingMode.TwoLevel
        : (Efer & EferLma) == 0 ? PagingMode.Pae
        : PagingMode.FourLevel;

    public readonly bool WriteProtect => (Cr0 & Cr0Wp) != 0;

    public readonly bool NoExecuteEnabled => (Efer & EferNxe) != 0;

    public readonly bool AlignmentCheckFlag => (Rflags & RflagsAc) != 0;

    /// <summary>Builds the state from the engine-neutral register file.</summary>
    public static PagingState From(in SystemRegisters sys, int cpl, ulong rflags) => new()
    {
        Cr0 = sys.Cr0,
        Cr3 = sys.Cr3,
        Cr4 = sys.Cr4,
        Efer = sys.Efer,
        Cpl = cpl,
        Rflags = rflags,
    };
}
