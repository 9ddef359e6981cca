// Runs a tiny guest under KVM until it writes a status byte to KvmExitPort: the real CPU as the MMU tests' oracle.
// The guest's CPU model is pinned where it matters to the MMU (MAXPHYADDR 40, like Mmu.PhysicalAddressBits).
using Iced.Intel;
using Ringvisor.Core.Bus;
using Ringvisor.Core.Cpu;
using Ringvisor.Core.Memory;
using Ringvisor.Core.Vm;
using Ringvisor.Kvm;
using Ringvisor.TestSupport;

namespace Ringvisor.Emulator.Tests.Memory;

internal static class KvmOracle
{
    /// <summary>Where the guests' #PF handlers store the error code (+0) and CR2 (+8).</summary>
    public const ulong Result = 0xA000;

    /// <summary>Runs until the guest writes the exit port; returns that status and the recorded error code and CR2.</summary>
    public static (int Status, uint ErrorCode, ulong Cr2) Run(GuestMemory memory, CpuState state)
    {
        int status = RunRaw(memory, state, out string? failure);
        Assert.True(failure is null, failure);
        Assert.True(memory.TryRead(Result, out ulong error));
        Assert.True(memory.TryRead(Result + 8, out ulong cr2));
        return (status, (uint)error, cr2);
    }

    /// <summary>
    /// Whether this host's KVM runs a guest with legacy (32-bit or PAE) paging: some KVM variants without VT-x/AMD-V
    /// support only 64-bit paging and shut such a guest down at its first instruction. Probed once.
    /// </summary>
    public static string? LegacyPagingUnavailableReason => s_legacyPaging.Value;

    private static readonly Lazy<string?> s_legacyPaging = new(ProbeLegacyPaging);

    private static string? ProbeLegacyPaging()
    {
        if (HostKvm.UnavailableReason is { } why)
        {
            return why;
        }

        try
        {
            using var memory = GuestMemory.Create(4UL << 20);
            const ulong pd = 0x1000, pt = 0x2000, code = 0x3000, gdt = 0x500;
            _ = memory.TryWrite(pd, (uint)pt | 3u);
            _ = memory.TryWrite(pt + (3 * 4), (uint)code | 3u); // identity-map the code page
            _ = memory.TryWrite(gdt + 8, 0x00CF_9A00_0000_FFFFUL);
            _ = memory.TryWrite(gdt + 16, 0x00CF_9200_0000_FFFFUL);
            _ = memory.Write(code, Assemble(32, code, a =>
            {
                a.mov(AssemblerRegisters.al, 0);
                a.@out(KvmExitPort.Port, AssemblerRegisters.al);
                a.hlt();
            }));
            var s = new CpuState();
            s.System.Cs = SegmentRegister.Flat(8, code: true);
            s.System.Ss = s.System.Ds = s.System.Es = s.System.Fs = s.System.Gs = SegmentRegister.Flat(16, code: false);
            s.System.Gdt = new DescriptorTable { Base = gdt, Limit = 0x17 };
            s.System.Cr0 = SystemRegisters.Cr0Pe | SystemRegisters.Cr0Et | SystemRegisters.Cr0Pg;
            s.System.Cr3 = pd;
            s.Registers.Rip = code;
            s.Registers.Rflags = CpuRegisters.RflagsReserved;
            int status = RunRaw(memory, s, out string? failure);
            return failure is null && status == 0 ? null : $"this host's KVM cannot run a guest with 32-bit paging ({failure ?? $"status {status}"})";
        }
        catch (Exception e) when (e is InvalidOperationException or IOException or KvmException)
        {
            return $"legacy-paging probe failed: {e.Message}";
        }
    }

    /// <summary>Runs the guest; the exit-port status, or -1 with <paramref name="failure"/> set.</summary>
    private static int RunRaw(GuestMemory memory, CpuState state, out string? failure)
    {
        failure = null;
        var pio = new IoBus("pio", 0x1_0000);
        var port = new KvmExitPort();
        pio.Register(KvmExitPort.Port, 1, port, "exit");
        using var engine = new KvmEngine(new EngineContext
        {
            Memory = memory,
            Pio = pio,
            Mmio = new IoBus("mmio", 1UL << 52),
            Control = port,
            VcpuCount = 1,

            // MAXPHYADDR 40 (CPUID 80000008H EAX[7:0]) and 48 linear-address bits, like the MMU.
            CpuidOverrides = new Dictionary<(uint, uint), (uint, uint, uint, uint)> { [(0x8000_0008, 0)] = (0x3028, 0, 0, 0) },
        });
        using var vcpu = engine.CreateVcpu(0);
        port.Vcpu = vcpu;
        vcpu.SetState(state);

        // A hang guard, not a timing assertion.
        using var guard = new Timer(_ => port.RequestStop(VmStopReason.UserQuit, 1, "hang guard"), null, 20_000, Timeout.Infinite);
        while (port.Status < 0)
        {
            var exit = vcpu.Run();
            if (exit.Reason != VcpuExitReason.Kicked)
            {
                var st = vcpu.GetState();
                failure = $"unexpected exit {exit}: rip {st.Registers.Rip:X} cs {st.System.Cs.Selector:X} cr0 {st.System.Cr0:X} " +
                          $"cr2 {st.System.Cr2:X} cr3 {st.System.Cr3:X} cr4 {st.System.Cr4:X} efer {st.System.Efer:X}";
                return -1;
            }
        }

        if (port.Status >= 0x100)
        {
            failure = $"stopped: {port.StopDetail}";
            return -1;
        }

        return port.Status;
    }

    public static byte[] Assemble(int bitness, ulong address, Action<Assembler> build)
    {
        var a = new Assembler(bitness);
        build(a);
        using var ms = new MemoryStream();
        a.Assemble(new StreamCodeWriter(ms), address);
        return ms.ToArray();
    }

    public static void Load(GuestMemory memory, ulong gpa, byte[] bytes) =>
        Assert.Equal(MemoryAccessResult.Ok, memory.Write(gpa, bytes));
}
