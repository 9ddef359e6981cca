using Ringvisor.TestSupport;

namespace Ringvisor.Machine.Tests.Integration;

/// <summary>The whole-machine scenarios under the kvm engine.</summary>
public sealed class KvmMachineTests
{
    [KvmFact]
    public void Multiboot_KernelReceivesCommandLineAndMemoryMap() => MachineScenarios.Multiboot_KernelReceivesCommandLineAndMemoryMap(EngineKind.Kvm);

    [KvmFact]
    public void SpinningGuest_StopRequest_StopsPromptly() => MachineScenarios.SpinningGuest_StopRequest_StopsPromptly(EngineKind.Kvm);

    [KvmFact]
    public void HaltWithInterruptsDisabled_StopsWithStatusZero() => MachineScenarios.HaltWithInterruptsDisabled_StopsWithStatusZero(EngineKind.Kvm);

    [KvmFact]
    public void I8042ResetPulse_StopsWithResetStatusZero() => MachineScenarios.I8042ResetPulse_StopsWithResetStatusZero(EngineKind.Kvm);

    [KvmHardwareFact]
    public void TripleFault_StopsWithStatusThree() => MachineScenarios.TripleFault_StopsWithStatusThree(EngineKind.Kvm);

    [KvmFact]
    public void PauseResume_GuestMakesNoProgressWhilePaused() => MachineScenarios.PauseResume_GuestMakesNoProgressWhilePaused(EngineKind.Kvm);
}
