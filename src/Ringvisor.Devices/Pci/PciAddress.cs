namespace Ringvisor.Devices.Pci;

/// <summary>A bus/device/function triple (PCI Local Bus 3.0 §3.2.2.3.2).</summary>
public readonly record struct PciAddress(byte Bus, byte Device, byte Function)
{
    public override string ToString() => $"{Bus:x2}:{Device:x2}.{Function}";
}
