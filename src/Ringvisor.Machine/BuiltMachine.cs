using Ringvisor.Devices.Legacy;
using Ringvisor.Devices.Pci;
using Ringvisor.Devices.Virtio;
using Ringvisor.Machine.ConsolePorts;

namespace Ringvisor.Machine;

/// <summary>A VM built from a configuration, with its console and what the CLI reports.</summary>
public sealed class BuiltMachine : IDisposable
{
    private readonly Func<string?> _stats;

    internal BuiltMachine(VirtualMachine vm, Serial16550 console, EngineKind engine, string engineReason, string bootFormat, Func<string?> stats)
    {
        Vm = vm;
        Console = console;
        Engine = engine;
        EngineReason = engineReason;
        BootFormat = bootFormat;
        _stats = stats;
    }

    public VirtualMachine Vm { get; }

    /// <summary>COM1: the guest's console.</summary>
    public Serial16550 Console { get; }

    public EngineKind Engine { get; }

    /// <summary>PCI bus 0 (host bridge and the virtio functions).</summary>
    public required PciBus Pci { get; init; }

    /// <summary>The virtio functions in slot order: disks, NICs, consoles, then the RNG.</summary>
    public required IReadOnlyList<VirtioPciTransport> VirtioDevices { get; init; }

    /// <summary>The --virtio-console unix=PATH ports, in order.</summary>
    public IReadOnlyList<UnixSocketConsolePort> SocketConsolePorts { get; init; } = [];

    /// <summary>Under kvm: the ioeventfd path for queue notifications; null under bt (notifications are MMIO writes).</summary>
    public KvmVirtioNotifier? VirtioNotifier { get; init; }

    /// <summary>Why this engine was chosen (for --engine auto).</summary>
    public string EngineReason { get; }

    /// <summary>What the loader recognised (bzImage, ELF/PVH, multiboot, ...).</summary>
    public string BootFormat { get; }

    /// <summary>Bytes typed by the user (or piped in) for the guest's serial console.</summary>
    public void SendConsoleInput(ReadOnlySpan<byte> bytes) => Console.EnqueueInput(bytes);

    /// <summary>Engine statistics as a printable table, or null when the engine collected none.</summary>
    public string? FormatStats() => _stats();

    public void Dispose() => Vm.Dispose();
}
