using Ringvisor.Core.Cpu;

namespace Ringvisor.Machine;

internal static class BtEngineFactory
{
    // Temporary until the interpreter's engine class lands (issue 3 is in progress).
    public static (ICpuEngine Engine, Func<string?> Stats) Create(EngineContext ctx, MachineConfig config, Action<ReadOnlySpan<byte>> console) =>
        throw new NotSupportedException("the bt engine is not available yet in this build; use --engine kvm on a VT-x/AMD-V host");
}
