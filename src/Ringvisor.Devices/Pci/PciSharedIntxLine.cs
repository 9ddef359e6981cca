// PCI INTx# lines are wired-OR and shared (PCI 3.0 §2.2.6): several functions drive one GSI, which stays asserted
// while any of them asserts it. Each function gets its own source; the GSI follows the OR of the sources.
using Ringvisor.Core.Interrupts;

namespace Ringvisor.Devices.Pci;

internal sealed class PciSharedIntxLine(IInterruptController controller, int gsi)
{
    private readonly object _gate = new();
    private int _asserted;

    public int Gsi { get; } = gsi;

    public IInterruptLine CreateSource() => new Source(this);

    private void Change(bool assert)
    {
        lock (_gate)
        {
            int before = _asserted;
            _asserted += assert ? 1 : -1;
            if ((before == 0) != (_asserted == 0))
            {
                controller.SetGsi(Gsi, _asserted > 0);
            }
        }
    }

    private sealed class Source(PciSharedIntxLine line) : IInterruptLine
    {
        private readonly object _gate = new();
        private bool _level;

        public void SetLevel(bool asserted)
        {
            lock (_gate)
            {
                if (_level == asserted)
                {
                    return;
                }

                _level = asserted;
                line.Change(asserted);
            }
        }
    }
}
