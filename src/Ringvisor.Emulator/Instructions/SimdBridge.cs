// Whether x87/MMX/SSE instructions are executed by Fpu/SimdExecutor (true since it was integrated).
namespace Ringvisor.Emulator.Instructions;

internal static class SimdBridge
{
    public const bool Available = true;
}
