// Identity of a unit in the per-VM cache: the code page's guest-physical page number and generation (a store to the
// page bumps the generation, so stale units are never found again), the decoding bitness and the entry offset.
namespace Ringvisor.Emulator.Translation;

internal readonly record struct UnitKey(ulong PhysPage, int Generation, int Bitness, int EntryOffset);
