// A minimal VM around KvmEngine for tests: small RAM, PIO/MMIO buses, a debug-exit port, and a vCPU driver.
using Ringvisor.Core.Bus;
using Ringvisor.Core.Cpu;
using Ringvisor.Core.Memory;

namespace Ringvisor.Kvm.Tests.Support;

internal sealed class TestVm : IDisposable
{
    public const ulong DefaultRamSize = 16 << 20;

    public TestVm(int vcpuCount = 1, ulong ramSize = DefaultRamSize,
        IReadOnlyDictionary<(uint Leaf, uint Subleaf), (uint Eax, uint Ebx, uint Ecx, uint Edx)>? cpuidOverrides = null)
    {
        Memory = GuestMemory.Create(ramSize);
        Pio = new IoBus("pio", 0x1_0000);
        Mmio = new IoBus("mmio", 1UL << 52);
        Control = new TestVmControl();
        Pio.Register(DebugExitDevice.Port, 1, new DebugExitDevice(Control), "debug-exit");
        Engine = new KvmEngine(new EngineContext
        {
            Memory = Memory,
            Pio = Pio,
            Mmio = Mmio,
            Control = Control,
            VcpuCount = vcpuCount,
            CpuidOverrides = cpuidOverrides,
        });
    }

    public GuestMemory Memory { get; }

    public IoBus Pio { get; }

    public IoBus Mmio { get; }

    public TestVmControl Control { get; }

    public KvmEngine Engine { get; }

    public KvmVcpu CreateVcpu(int index)
    {
        var vcpu = (KvmVcpu)Engine.CreateVcpu(index);
        Control.Attach(vcpu);
        return vcpu;
    }

    public void Load(ulong gpa, byte[] bytes) =>
        Assert.Equal(MemoryAccessResult.Ok, Memory.Write(gpa, bytes));

    public void Dispose()
    {
        Engine.Dispose();
        Memory.Dispose();
    }
}
