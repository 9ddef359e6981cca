namespace Ringvisor.Emulator.Memory;

/// <summary>
/// The translation of an instruction-fetch page: what the decoder cache keys by (<see cref="PhysicalPage"/>) and
/// reads from (<see cref="HostPage"/>, a host pointer to the 4 KiB page, or 0 when the page is not RAM and must be
/// fetched through <see cref="Mmu.TryFetch"/>, uncached).
/// </summary>
public readonly record struct FetchPage(ulong LinearPage, ulong PhysicalPage, nint HostPage)
{
    public bool IsRam => HostPage != 0;
}
