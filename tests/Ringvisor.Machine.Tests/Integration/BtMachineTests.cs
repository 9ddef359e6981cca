using Ringvisor.TestSupport;

namespace Ringvisor.Machine.Tests.Integration;

/// <summary>The whole-machine scenarios under the bt engine.</summary>
public sealed class BtMachineTests
{
    [Fact]
    public void Multiboot_KernelReceivesCommandLineAndMemoryMap() => MachineScenarios.Multiboot_KernelReceivesCommandLineAndMemoryMap(EngineKind.Bt);

    [Fact]
    public void SpinningGuest_StopRequest_StopsPromptly() => MachineScenarios.SpinningGuest_StopRequest_StopsPromptly(EngineKind.Bt);

    [Fact]
    public void HaltWithInterruptsDisabled_StopsWithStatusZero() => MachineScenarios.HaltWithInterruptsDisabled_StopsWithStatusZero(EngineKind.Bt);

    [Fact]
    public void I8042ResetPulse_StopsWithResetStatusZero() => MachineScenarios.I8042ResetPulse_StopsWithResetStatusZero(EngineKind.Bt);

    [Fact]
    public void TripleFault_StopsWithStatusThree() => MachineScenarios.TripleFault_StopsWithStatusThree(EngineKind.Bt);

    [Fact]
    public void PauseResume_GuestMakesNoProgressWhilePaused() => MachineScenarios.PauseResume_GuestMakesNoProgressWhilePaused(EngineKind.Bt);

    [Fact]
    public void BuiltButNeverStarted_DisposesCleanly()
    {
        var m = TestMachine.Build(EngineKind.Bt, TestKernels.SpinForever());
        m.Machine.Dispose();
        m.Dispose();
    }
}
