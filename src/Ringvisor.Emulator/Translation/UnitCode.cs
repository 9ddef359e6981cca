// The signature of translated code: the vCPU, the linear address of the unit's page (units are shared by every linear
// alias of a physical page) and the instruction budget. Returns a TranslationExit.
using Ringvisor.Emulator.Instructions;

namespace Ringvisor.Emulator.Translation;

internal delegate int UnitCode(Cpu cpu, ulong pageBase, long budget);
