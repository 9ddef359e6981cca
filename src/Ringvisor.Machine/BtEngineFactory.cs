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
            Translation = config.BtTranslation,
            VerifyUnits = config.BtVerifyUnits,
            ConsoleSink = console,
        });
        // Device DMA (virtio) and VMM writes into guest RAM must drop decoded code on the pages they touch, or a
        // program read from disk into a page that once held other code would run stale instructions.
        ctx.Memory.WriteObserver = engine.InvalidateCode;
        return (engine, () => config.CollectStats ? engine.Stats.Format() : null);
    }
}
