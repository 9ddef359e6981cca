// The page a unit's page-crossing instruction continues on: its guest-physical page number and generation when the
// region was chosen (the bytes the instruction takes from it end the unit's Source). Translated code checks before
// that instruction that the next linear page still maps there with that generation (Cpu.TranslatedPageValid) and
// otherwise leaves the instruction to the interpreter, which fetches (and faults) as the architecture says.
namespace Ringvisor.Emulator.Translation;

internal sealed record CrossingPage(ulong PhysPage, int Generation)
{
    /// <summary>Bytes of the next page a page-crossing instruction may use (the longest instruction is 15 bytes).</summary>
    public const int MaxBytes = 15;
}
