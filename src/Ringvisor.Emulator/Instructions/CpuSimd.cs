// Routing of x87/MMX/SSE instructions to the SIMD executor (Fpu/). Until that executor is wired in, they raise #UD.
using Iced.Intel;

namespace Ringvisor.Emulator.Instructions;

public sealed partial class Cpu
{
    private void ExecSimd(in Instruction ins) => Undefined(ins);
}
