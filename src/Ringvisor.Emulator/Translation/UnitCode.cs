// The signature of translated code: the vCPU, the linear address of the unit's page (units are shared by every linear
// alias of a physical page), the instruction budget, and the unit's decoded instructions that run through the
// interpreter (helper calls), and where to enter it (0: its entry; i: its side entry i, TranslatedUnit.SideEntries).
// Returns a TranslationExit.
using Iced.Intel;
using Ringvisor.Emulator.Instructions;

namespace Ringvisor.Emulator.Translation;

internal delegate int UnitCode(Cpu cpu, ulong pageBase, long budget, Instruction[]? helpers, int entry);
