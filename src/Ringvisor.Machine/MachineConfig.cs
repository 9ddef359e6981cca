namespace Ringvisor.Machine;

/// <summary>Everything needed to build a VM; the CLI fills it from its options.</summary>
public sealed record MachineConfig
{
    public const ulong DefaultMemory = 256UL << 20;

    public required string KernelPath { get; init; }

    public IReadOnlyList<string> InitrdPaths { get; init; } = [];

    public string CommandLine { get; init; } = "";

    public ulong MemoryBytes { get; init; } = DefaultMemory;

    public int VcpuCount { get; init; } = 1;

    public EngineKind Engine { get; init; } = EngineKind.Auto;

    /// <summary>Attach QEMU's isa-debug-exit device at port 0xF4.</summary>
    public bool DebugExit { get; init; }

    /// <summary>bt engine: instruction/exception trace of vCPU 0 to this file.</summary>
    public string? TracePath { get; init; }

    /// <summary>Collect and report engine statistics at exit.</summary>
    public bool CollectStats { get; init; }

    /// <summary>bt engine: translate hot guest code to IL (false: interpret everything, the reference tier).</summary>
    public bool BtTranslation { get; init; } = true;

    /// <summary>bt engine: check every translated unit against guest memory before it runs (a debugging aid,
    /// BtOptions.VerifyUnits).</summary>
    public bool BtVerifyUnits { get; init; }

    /// <summary>virtio-blk disks, in PCI slot order (the first is /dev/vda).</summary>
    public IReadOnlyList<DiskConfig> Disks { get; init; } = [];

    /// <summary>virtio-net NICs, in PCI slot order (the first is eth0).</summary>
    public IReadOnlyList<NetConfig> Nets { get; init; } = [];

    /// <summary>virtio-console ports, in PCI slot order after the NICs (the first is /dev/hvc0).</summary>
    public IReadOnlyList<ConsoleConfig> Consoles { get; init; } = [];

    /// <summary>Name used to derive stable MAC addresses for NICs without an explicit one.</summary>
    public string Name { get; init; } = "vm";

    /// <summary>Upper bound on --cpus (the MP table and APIC IDs are sized for it).</summary>
    public const int MaxVcpus = 64;

    /// <summary>Checks ranges a user can get wrong; returns an error line or null.</summary>
    public string? Validate()
    {
        if (VcpuCount < 1 || VcpuCount > MaxVcpus)
        {
            return $"--cpus must be between 1 and {MaxVcpus} (got {VcpuCount})";
        }

        if (MemoryBytes < (16UL << 20))
        {
            return $"--memory must be at least 16M (got {MemoryBytes >> 20}M)";
        }

        if (MemoryBytes > (1UL << 40))
        {
            return "--memory must be at most 1T";
        }

        if (MemoryBytes % 4096 != 0)
        {
            return "--memory must be a multiple of 4K";
        }

        return null;
    }
}
