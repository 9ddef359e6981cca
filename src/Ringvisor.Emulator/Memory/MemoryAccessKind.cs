namespace Ringvisor.Emulator.Memory;

/// <summary>What a linear access does, for paging permission checks and the #PF error code.</summary>
public enum MemoryAccessKind : byte
{
    Read = 0,
    Write = 1,

    /// <summary>Instruction fetch.</summary>
    Execute = 2,
}
