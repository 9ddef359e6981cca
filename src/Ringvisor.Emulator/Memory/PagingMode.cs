// The paging modes of Intel SDM Vol. 3A §4.1.1 (Table 4-1); 5-level paging is not modelled.
namespace Ringvisor.Emulator.Memory;

public enum PagingMode : byte
{
    /// <summary>CR0.PG = 0: linear addresses are physical addresses.</summary>
    None,

    /// <summary>32-bit paging (CR0.PG = 1, CR4.PAE = 0): 4 KiB pages, and 4 MiB pages with CR4.PSE (PSE-36).</summary>
    TwoLevel,

    /// <summary>PAE paging (CR4.PAE = 1, EFER.LMA = 0): four PDPTE registers loaded with CR3, 2 MiB and 4 KiB pages.</summary>
    Pae,

    /// <summary>4-level paging (EFER.LMA = 1): 1 GiB, 2 MiB and 4 KiB pages, 48-bit canonical linear addresses.</summary>
    FourLevel,
}
