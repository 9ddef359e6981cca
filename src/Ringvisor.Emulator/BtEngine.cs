// The bt engine: software CPUs over the machine's memory, buses and emulated interrupt controllers.
using Ringvisor.Core.Cpu;
using Ringvisor.Core.Interrupts;

namespace Ringvisor.Emulator;

public sealed class BtEngine : ICpuEngine
{
    private readonly EngineContext _context;

    public BtEngine(EngineContext context, BtOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(context);
        _context = context;
        Host = new CpuHost(context.Memory, context.Pio, context.Mmio)
        {
            Control = context.Control,
            Time = context.Time,
            Options = options ?? new BtOptions(),
            VcpuCount = context.VcpuCount,
            LocalApics = context.LocalInterruptControllers,
            CpuidOverrides = context.CpuidOverrides,
        };
    }

    public string Name => "bt";

    public IInterruptController Interrupts => _context.PlatformInterrupts ?? NoInterruptController.Instance;

    public bool ProvidesInterruptControllers => false;

    /// <summary>The environment shared by this engine's vCPUs.</summary>
    public CpuHost Host { get; }

    public BtStats Stats => Host.Stats;

    public IVcpu CreateVcpu(int index)
    {
        if (index < 0 || index >= _context.VcpuCount)
        {
            throw new ArgumentOutOfRangeException(nameof(index), index, $"vCPU index must be below {_context.VcpuCount}");
        }

        return new BtVcpu(Host, index);
    }

    /// <summary>Drops decoded code for guest-physical [gpa, gpa+length): call after DMA or loader writes into RAM.</summary>
    public void InvalidateCode(ulong gpa, ulong length) => Host.MemorySystem.InvalidateRange(gpa, length);

    public void Dispose()
    {
    }
}
