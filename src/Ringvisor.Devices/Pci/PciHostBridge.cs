// Device 0:0.0, the host bridge. It has no BARs and no interrupt; guests use it to recognise a PCI bus.
namespace Ringvisor.Devices.Pci;

public sealed class PciHostBridge : PciFunction
{
    /// <summary>Intel 82441FX PMC (440FX), the host bridge most PC guests know (Intel 440FX datasheet §3.2).</summary>
    public const ushort IntelVendorId = 0x8086;
    public const ushort I440FxDeviceId = 0x1237;

    /// <summary>Class 06h bridge, subclass 00h host bridge (PCI Code and ID Assignment §1.7).</summary>
    public const uint HostBridgeClass = 0x06_00_00;

    public PciHostBridge()
        : base("host-bridge", IntelVendorId, I440FxDeviceId, HostBridgeClass, revision: 0x02, usesIntx: false)
    {
    }
}
