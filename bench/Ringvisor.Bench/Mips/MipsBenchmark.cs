// Interpreter speed on a fixed CPU-bound integer workload: a 64-bit guest loop (ALU, shifts, multiply, loads and
// stores, compare-and-branch) run by the bt engine; prints guest MIPS. The same code runs natively (KVM at CPL 3)
// when /dev/kvm is usable, to show the native ceiling beside it.
using System.Diagnostics;
using System.Globalization;
using Iced.Intel;
using Ringvisor.Core.Bus;
using Ringvisor.Core.Cpu;
using Ringvisor.Core.Memory;
using Ringvisor.Core.Vm;
using Ringvisor.Emulator;
using static Iced.Intel.AssemblerRegisters;

namespace Ringvisor.Bench.Mips;

internal static class MipsBenchmark
{
    private const ulong CodeAddress = 0x10_0000;
    private const ulong DataAddress = 0x20_0000;
    private const ushort DonePort = 0xF4;

    public static int Run(string[] args)
    {
        long iterations = 10_000_000;
        if (args.Length >= 2 && args[0] == "--iterations" && long.TryParse(args[1], CultureInfo.InvariantCulture, out long it) && it > 0)
        {
            iterations = it;
        }

        using var mem = GuestMemory.Create(16UL << 20);
        byte[] code = Assemble(iterations);
        mem.Write(CodeAddress, code);

        // Identity map the first 1 GiB with one 1 GiB page (PML4 -> PDPT with PS).
        BenchGuest.IdentityMap1G(mem);

        var pio = new IoBus("pio", 0x1_0000);
        var mmio = new IoBus("mmio", ulong.MaxValue);
        var control = new BenchVmControl();
        IVcpu? vcpu = null;
        pio.Register(DonePort, 4, new BenchDoneDevice(() =>
        {
            control.Stopped = true;
            vcpu?.Kick();
        }), "done");
        using var engine = new BtEngine(new EngineContext { Memory = mem, Pio = pio, Mmio = mmio, Control = control, VcpuCount = 1 }, new BtOptions { CollectStats = false });
        vcpu = engine.CreateVcpu(0);
        vcpu.SetState(BenchGuest.LongModeState(CodeAddress, 0x80000));

        var sw = Stopwatch.StartNew();
        while (!control.Stopped)
        {
            var exit = vcpu.Run();
            if (exit.Reason is not (VcpuExitReason.Kicked or VcpuExitReason.Halted))
            {
                Console.Error.WriteLine($"mips: guest stopped unexpectedly: {exit.Reason} {exit.Detail}");
                return 1;
            }
        }

        sw.Stop();
        // 4 set-up instructions, 10 per iteration, 3 to report (the counters are off: they cost time).
        long instructions = 4 + (10 * iterations) + 3;
        double mips = instructions / sw.Elapsed.TotalSeconds / 1e6;
        Console.WriteLine($"bt interpreter: {instructions:N0} guest instructions in {sw.Elapsed.TotalSeconds:F2} s = {mips:F1} MIPS");
        return 0;
    }

    private static byte[] Assemble(long iterations)
    {
        var a = new Assembler(64);
        var loop = a.CreateLabel();
        a.mov(rcx, iterations);
        a.mov(rsi, DataAddress);
        a.xor(eax, eax);
        a.mov(rbx, 0x9E37_79B9_7F4A_7C15);
        a.Label(ref loop);
        a.add(rax, rbx); // 1
        a.mov(rdx, rax); // 2
        a.shr(rdx, 7); // 3
        a.xor(rax, rdx); // 4
        a.imul(rdx, rax, 31); // 5
        a.mov(__qword_ptr[rsi + 8], rdx); // 6
        a.add(rax, __qword_ptr[rsi + 8]); // 7
        a.and(edx, 0xFF); // 8
        a.dec(rcx); // 9
        a.jne(loop); // 10 instructions per iteration
        a.mov(__qword_ptr[rsi], rax);
        a.mov(dx, DonePort);
        a.@out(dx, eax);
        a.hlt();
        var ms = new MemoryStream();
        a.Assemble(new StreamCodeWriter(ms), CodeAddress);
        return ms.ToArray();
    }
}
