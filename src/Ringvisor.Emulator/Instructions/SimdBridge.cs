// Whether x87/MMX/SSE instructions are executed (by Fpu/SimdExecutor) or raise #UD until it is integrated.
namespace Ringvisor.Emulator.Instructions;

internal static class SimdBridge
{
    public const bool Available = false;
}
