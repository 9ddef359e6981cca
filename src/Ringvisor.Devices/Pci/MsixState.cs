namespace Ringvisor.Devices.Pci;

/// <summary>Saved MSI-X vector table and pending bits (the enable/mask bits live in configuration space).</summary>
public sealed record MsixState(byte[] Table, ulong[] Pending);
