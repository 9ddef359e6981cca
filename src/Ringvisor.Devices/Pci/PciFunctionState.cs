namespace Ringvisor.Devices.Pci;

/// <summary>Saved state of a PCI function: its 4 KiB configuration space, INTx level and MSI-X state.</summary>
public sealed record PciFunctionState(int Version, byte[] ConfigSpace, bool IntxLevel, MsixState? Msix)
{
    public const int CurrentVersion = 1;
}
