namespace Ringvisor.Devices.Platform;

/// <summary>Delivery mode field of the ICR, IOAPIC redirection entries, LVT entries and MSI data (Intel SDM Vol. 3A §10.6.1).</summary>
public enum ApicDeliveryMode
{
    Fixed = 0,
    LowestPriority = 1,
    Smi = 2,
    Nmi = 4,
    Init = 5,
    StartUp = 6,
    ExtInt = 7,
}
