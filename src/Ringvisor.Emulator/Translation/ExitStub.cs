// An exit path of a unit, emitted out of line after the unit's body: adjusts the instruction count, sets the exit RIP
// (a page-relative constant, or already in the exit-RIP local) and the reason, then joins the common epilogue.
using System.Reflection.Emit;

namespace Ringvisor.Emulator.Translation;

internal readonly record struct ExitStub(Label Label, TranslationExit Reason, long RipOffset, bool RipInLocal, int CountAdjust);
