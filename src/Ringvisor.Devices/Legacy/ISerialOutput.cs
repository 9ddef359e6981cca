namespace Ringvisor.Devices.Legacy;

/// <summary>Where a UART's transmitted bytes go (terminal, log file, test buffer). Called with the UART's lock held,
/// so bytes from concurrent vCPUs arrive in order; implementations must not call back into the UART.</summary>
public interface ISerialOutput
{
    void Write(ReadOnlySpan<byte> data);
}
