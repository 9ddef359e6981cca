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
        string kernel = Path.Combine(Path.GetTempPath(), $"rv-mb-{Guid.NewGuid():N}.bin");
        File.WriteAllBytes(kernel, TestKernels.SpinForever());
        try
        {
            var m = MachineBuilder.Build(new MachineConfig { KernelPath = kernel, MemoryBytes = 32UL << 20, Engine = EngineKind.Bt }, _ => { });
            m.Dispose();
            m.Dispose();
        }
        finally
        {
            File.Delete(kernel);
        }
    }
}
