namespace Ringvisor.Core.Bus;

/// <summary>
/// A device's register window on a PIO or MMIO bus. Offsets are relative to the start of the window the device was
/// registered at; a device never sees absolute ports or addresses. Calls may come from any vCPU thread: devices
/// synchronise themselves.
/// </summary>
public interface IBusDevice
{
    /// <summary>Fills <paramref name="data"/> (1, 2, 4 or 8 bytes, little-endian) from the register at <paramref name="offset"/>.</summary>
    void Read(ulong offset, Span<byte> data);

    /// <summary>Writes <paramref name="data"/> (little-endian) to the register at <paramref name="offset"/>.</summary>
    void Write(ulong offset, ReadOnlySpan<byte> data);
}
