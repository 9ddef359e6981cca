namespace Ringvisor.Core.Interrupts;

/// <summary>An interrupt line wired to one GSI of a controller.</summary>
public sealed class GsiLine(IInterruptController controller, int gsi) : IInterruptLine
{
    public int Gsi { get; } = gsi;

    public void SetLevel(bool asserted) => controller.SetGsi(Gsi, asserted);
}
