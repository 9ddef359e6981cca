namespace Ringvisor.Devices.Platform;

/// <summary>
/// One interrupt message on the APIC bus, from an IOAPIC redirection entry, an MSI, or a local APIC's ICR.
/// <paramref name="Destination"/> is the 8-bit xAPIC destination (physical APIC ID, 0xFF = broadcast, or a logical
/// MDA when <paramref name="Logical"/>). <paramref name="LevelTriggered"/> makes the receiving LAPIC set TMR so its
/// EOI is broadcast to the IOAPIC; <paramref name="Assert"/> is the ICR level bit (only an INIT with level 0 and
/// trigger level, the "INIT level de-assert", is a no-op).
/// </summary>
public readonly record struct ApicMessage(
    byte Vector,
    ApicDeliveryMode Mode,
    byte Destination,
    bool Logical,
    bool LevelTriggered = false,
    bool Assert = true,
    ApicShorthand Shorthand = ApicShorthand.None);
