using Ringvisor.Core.Cpu;
using Ringvisor.Emulator;

namespace Ringvisor.Machine;

internal static class BtEngineFactory
{
    public static (ICpuEngine Engine, Func<string?> Stats) Create(EngineContext ctx, MachineConfig config, Action<ReadOnlySpan<byte>> console)
    {
        var engine = new BtEngine(ctx, new BtOptions
        {
            TracePath = config.TracePath,
            CollectStats = config.CollectStats,
            ConsoleSink = console,
        });
        return (engine, () => config.CollectStats ? engine.Stats.Format() : null);
    }
}
