namespace Ringvisor.Core.Memory;

/// <summary>Outcome of an access by guest-physical address. Guest faults are values (design principle 3).</summary>
public enum MemoryAccessResult
{
    Ok = 0,

    /// <summary>Some byte of the range is not guest RAM (a hole, MMIO, or past the end).</summary>
    OutOfRange = 1,
}
