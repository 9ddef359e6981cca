namespace Ringvisor.Core.Interrupts;

/// <summary>A line connected to nothing (tests, devices whose IRQ is not wired).</summary>
public sealed class NullInterruptLine : IInterruptLine
{
    public static readonly NullInterruptLine Instance = new();

    public void SetLevel(bool asserted)
    {
    }
}
