// The controller a bt engine reports when the machine gave it none (tests): interrupts go nowhere.
using Ringvisor.Core.Interrupts;

namespace Ringvisor.Emulator;

internal sealed class NoInterruptController : IInterruptController
{
    public static readonly NoInterruptController Instance = new();

    public void SetGsi(int gsi, bool level)
    {
    }

    public void SignalMsi(ulong address, uint data)
    {
    }
}
