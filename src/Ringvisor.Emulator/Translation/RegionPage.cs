// A page other than its entry page that a unit's region continues on (a trace across pages): where it lies relative to
// the entry page (a multiple of 4 KiB, in the linear space: relative branches keep that distance under any mapping),
// the guest-physical page and generation its bytes came from, the bytes, and which offsets the interpreter has run
// there. Translated code checks on every edge into the page that its linear page still maps there for instruction
// fetch with that generation (Cpu.TranslatedPageValid) and otherwise exits to that address.
namespace Ringvisor.Emulator.Translation;

internal sealed record RegionPage(int Delta, ulong PhysPage, int Generation, byte[] Bytes, Func<int, bool>? Executed);
