// How a unit's return value is packed: the TranslationExit in the low byte, the exit's link number (an index into
// TranslatedUnit.Links, 0 = none) above it.
namespace Ringvisor.Emulator.Translation;

internal static class TranslationExits
{
    public const int LinkShift = 8;

    public static TranslationExit Reason(int value) => (TranslationExit)(value & 0xFF);

    public static int Link(int value) => value >> LinkShift;
}
