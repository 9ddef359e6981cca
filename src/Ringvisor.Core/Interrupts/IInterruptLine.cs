namespace Ringvisor.Core.Interrupts;

/// <summary>One interrupt wire out of a device (vm-superio's Trigger).</summary>
public interface IInterruptLine
{
    void SetLevel(bool asserted);

    /// <summary>An edge: assert then deassert (ISA devices such as the UART and PIT).</summary>
    void Pulse()
    {
        SetLevel(true);
        SetLevel(false);
    }
}
