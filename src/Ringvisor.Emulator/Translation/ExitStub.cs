// An exit path of a unit, emitted out of line after the unit's body: adjusts the instruction count, sets the exit RIP
// (a page-relative constant, or already in the exit-RIP local) and the reason, then joins the common epilogue. A stub
// made while a deferred flag writer's state is only in its locals first commits it (CommitFlags).
using System.Reflection.Emit;

namespace Ringvisor.Emulator.Translation;

internal readonly record struct ExitStub(Label Label, TranslationExit Reason, long RipOffset, bool RipInLocal, int CountAdjust, bool CommitFlags);
