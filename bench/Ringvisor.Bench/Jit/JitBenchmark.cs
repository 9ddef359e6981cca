// The bt translator's JIT cost per unit, measured in seconds instead of per boot: a fixed set of synthetic code pages
// (one unit each: a seeded mix of loads, stores, ALU, compare-and-branch, stack and helper instructions shaped like
// the Linux boot's units) runs with translation threshold 1, so every page is translated on its first execution,
// then loops over all pages so the translated code's own speed shows too. Each round uses a fresh engine (a fresh
// translation cache), so every round compiles every unit again. Prints microseconds per unit (build + emit + JIT, the
// engine's own stopwatch, and this thread's CPU time, which the other load of a shared host does not inflate), IL bytes
// per guest instruction, and translated MIPS (thread CPU time).
using System.Globalization;
using Iced.Intel;
using Ringvisor.Core.Bus;
using Ringvisor.Core.Cpu;
using Ringvisor.Core.Memory;
using Ringvisor.Core.Vm;
using Ringvisor.Bench.Native;
using Ringvisor.Emulator;
using static Iced.Intel.AssemblerRegisters;

namespace Ringvisor.Bench.Jit;

internal static class JitBenchmark
{
    private const ulong CodeAddress = 0x10_0000;
    private const ulong DataAddress = 0x80_0000;
    private const ulong StackTop = 0x90_0000;
    private const ushort DonePort = 0xF4;
    private const int PageSize = 4096;

    public static int Run(string[] args)
    {
        int pages = 500, length = 12, rounds = 5, loops = 2000;
        string usage = $"usage: jit [--pages N] [--length instructions per unit] [--rounds N] [--loops N] [--only {string.Join("|", OnlyNames)}]";
        if (args.Length % 2 != 0)
        {
            Console.Error.WriteLine(usage);
            return 2;
        }

        for (int i = 0; i < args.Length; i += 2)
        {
            int v;
            if (args[i] == "--only")
            {
                v = Array.IndexOf(OnlyNames, args[i + 1]);
            }
            else if (!int.TryParse(args[i + 1], CultureInfo.InvariantCulture, out v) || v <= 0)
            {
                v = -1;
            }

            if (v < 0)
            {
                Console.Error.WriteLine(usage);
                return 2;
            }

            switch (args[i])
            {
                case "--pages": pages = v; break;
                case "--length": length = v; break;
                case "--rounds": rounds = v; break;
                case "--loops": loops = v; break;
                case "--only": s_only = v; break;
                default:
                    Console.Error.WriteLine(usage);
                    return 2;
            }
        }

        byte[] code = Assemble(pages, length);
        var perUnit = new List<double>();
        var cpuPerUnit = new List<double>();
        var mips = new List<double>();
        double ilPerInstruction = 0;
        long units = 0, unitInstructions = 0;

        // Round 0 warms up the translator itself (its own methods are JIT-compiled there) and is not counted.
        for (int round = 0; round <= rounds; round++)
        {
            // One pass (translation dominates), then the same units looping (execution dominates): the difference in
            // this thread's CPU time is the translated code's own, whatever else the host runs.
            var (il0, ins0) = BtStats.UnitIl;
            var once = RunOnce(code, 1);
            var (il1, ins1) = BtStats.UnitIl;
            var r = RunOnce(code, loops);
            if (once is null || r is null)
            {
                return 1;
            }

            if (round == 0)
            {
                continue;
            }

            units = once.Value.Units;
            unitInstructions = ins1 - ins0;
            ilPerInstruction = (double)(il1 - il0) / Math.Max(1, unitInstructions);
            perUnit.Add(once.Value.TranslateSeconds * 1e6 / Math.Max(1, units));
            cpuPerUnit.Add(once.Value.CpuSeconds * 1e6 / Math.Max(1, units));
            mips.Add((r.Value.Instructions - once.Value.Instructions) / Math.Max(1e-9, r.Value.CpuSeconds - once.Value.CpuSeconds) / 1e6);
        }

        perUnit.Sort();
        cpuPerUnit.Sort();
        mips.Sort();
        Console.WriteLine($"jit: {units} units of {unitInstructions} guest instructions ({(double)unitInstructions / Math.Max(1, units):F1} each), " +
            $"{ilPerInstruction:F1} IL bytes per guest instruction");
        Console.WriteLine($"jit: build + emit + JIT {Median(perUnit):F0} us per unit, wall (median of {rounds}; min {perUnit[0]:F0}, max {perUnit[^1]:F0})");
        Console.WriteLine($"jit: one pass {Median(cpuPerUnit):F0} us of thread CPU time per unit (median; min {cpuPerUnit[0]:F0}, max {cpuPerUnit[^1]:F0})");
        Console.WriteLine($"jit: translated code {Median(mips):F1} MIPS of thread CPU time over {loops} loops (median; min {mips[0]:F1}, max {mips[^1]:F1})");
        return 0;
    }

    private static double Median(List<double> sorted) => sorted.Count == 0 ? 0 : sorted[sorted.Count / 2];

    private static (long Units, double TranslateSeconds, double CpuSeconds, long Instructions)? RunOnce(byte[] code, int loops)
    {
        using var mem = GuestMemory.Create(16UL << 20);
        mem.Write(CodeAddress, code);
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
        // Synchronous compilation: the probe times the compile of every unit on this thread, then the translated code.
        var options = new BtOptions { CollectStats = true, TranslationThreshold = 1, BackgroundTranslation = false };
        using var engine = new BtEngine(new EngineContext { Memory = mem, Pio = pio, Mmio = mmio, Control = control, VcpuCount = 1 }, options);
        vcpu = engine.CreateVcpu(0);
        var state = BenchGuest.LongModeState(CodeAddress, StackTop);
        state.Registers.R15 = (ulong)loops;
        vcpu.SetState(state);

        long cpu0 = ThreadClock.NowNanoseconds();
        while (!control.Stopped)
        {
            var exit = vcpu.Run();
            if (exit.Reason is not (VcpuExitReason.Kicked or VcpuExitReason.Halted))
            {
                Console.Error.WriteLine($"jit: guest stopped unexpectedly: {exit.Reason} {exit.Detail}");
                return null;
            }
        }

        double cpu = (ThreadClock.NowNanoseconds() - cpu0) / 1e9;
        var stats = engine.Stats;
        return (stats.UnitsTranslated, stats.TranslationTime.TotalSeconds, cpu, stats.Instructions);
    }

    // Value registers the generator uses; RSI/RDI point into the data area, RSP at the stack, R15 counts loops.
    private static readonly AssemblerRegister64[] s_regs = [rax, rbx, rcx, rdx, r8, r9, r10, r11];
    private static readonly AssemblerRegister32[] s_regs32 = [eax, ebx, ecx, edx, r8d, r9d, r10d, r11d];

    /// <summary>A set-up page, then one page per unit: a seeded instruction mix and a jump to the next page; the last
    /// page loops back to the first unit's page R15 times.</summary>
    private static byte[] Assemble(int pages, int length)
    {
        var code = new byte[(pages + 1) * PageSize];
        var rng = new Random(12345);
        ulong first = CodeAddress + PageSize;
        for (int p = 0; p <= pages; p++)
        {
            ulong at = CodeAddress + (ulong)(p * PageSize);
            var a = new Assembler(64);
            if (p == 0)
            {
                a.mov(rsi, DataAddress);
                a.mov(rdi, DataAddress + 0x1000);
                a.mov(rsp, StackTop);
                a.jmp(first);
            }
            else
            {
                EmitBody(a, rng, length);
                if (p < pages)
                {
                    a.jmp(at + PageSize);
                }
                else
                {
                    var done = a.CreateLabel();
                    a.dec(r15);
                    a.je(done);
                    a.jmp(first);
                    a.Label(ref done);
                    a.mov(dx, DonePort);
                    a.@out(dx, eax);
                    a.hlt();
                }
            }

            var ms = new MemoryStream();
            a.Assemble(new StreamCodeWriter(ms), at);
            if (ms.Length > PageSize)
            {
                throw new InvalidOperationException("jit bench: page overflow (fewer instructions per unit)");
            }

            ms.ToArray().CopyTo(code, p * PageSize);
        }

        return code;
    }

    private static void EmitBody(Assembler a, Random rng, int length)
    {
        int emitted = 0;
        int pushed = 0;
        while (s_only >= 0 && emitted < length)
        {
            Only(a, rng);
            emitted++;
        }

        while (emitted < length)
        {
            int pick = rng.Next(100);
            if (pick < 10 && emitted + 3 < length)
            {
                // A forward conditional branch over one or two simple instructions.
                var skip = a.CreateLabel();
                switch (rng.Next(4))
                {
                    case 0: a.cmp(R(rng), rng.Next(64)); break;
                    case 1: a.test(R(rng), R(rng)); break;
                    case 2: a.cmp(R(rng), R(rng)); break;
                    default: a.cmp(__qword_ptr[rsi + Disp(rng)], rng.Next(64)); break;
                }

                switch (rng.Next(6))
                {
                    case 0: a.je(skip); break;
                    case 1: a.jne(skip); break;
                    case 2: a.jb(skip); break;
                    case 3: a.ja(skip); break;
                    case 4: a.jl(skip); break;
                    default: a.jg(skip); break;
                }

                int n = 1 + rng.Next(2);
                for (int i = 0; i < n; i++)
                {
                    Simple(a, rng);
                }

                a.Label(ref skip);
                emitted += 2 + n;
            }
            else if (pick < 16 && pushed < 4)
            {
                a.push(R(rng));
                pushed++;
                emitted++;
            }
            else if (pick < 20 && pushed > 0)
            {
                a.pop(R(rng));
                pushed--;
                emitted++;
            }
            else
            {
                Simple(a, rng);
                emitted++;
            }
        }

        for (; pushed > 0; pushed--)
        {
            a.pop(R(rng));
        }
    }

    // --only NAME: every instruction of every unit of one kind (to price one form at a time).
    private static readonly string[] OnlyNames = ["movrr", "load", "store", "add", "cmpjcc", "ror", "push", "helper", "addm", "lea"];
    private static int s_only = -1;

    private static void Only(Assembler a, Random rng)
    {
        switch (OnlyNames[s_only])
        {
            case "movrr": a.mov(R(rng), R(rng)); break;
            case "load": a.mov(R(rng), __qword_ptr[rsi + Disp(rng)]); break;
            case "store": a.mov(__qword_ptr[rdi + Disp(rng)], R(rng)); break;
            case "add": a.add(R(rng), R(rng)); break;
            case "cmpjcc":
                {
                    var l = a.CreateLabel();
                    a.cmp(R(rng), R(rng));
                    a.jne(l);
                    a.Label(ref l);
                    break;
                }

            case "ror": a.ror(R(rng), 13); break;
            case "push":
                a.push(R(rng));
                a.pop(R(rng));
                break;
            case "helper": a.bt(R(rng), (byte)rng.Next(64)); break;
            case "addm": a.add(__qword_ptr[rdi + Disp(rng)], R(rng)); break;
            default: a.lea(R(rng), __qword_ptr[R(rng) + R(rng) * 2 + 0x10]); break;
        }
    }

    private static AssemblerRegister64 R(Random rng) => s_regs[rng.Next(s_regs.Length)];

    private static AssemblerRegister32 R32(Random rng) => s_regs32[rng.Next(s_regs32.Length)];

    private static int Disp(Random rng) => rng.Next(0, 0x1F8) * 8;

    // Roughly the mix of the boot's translated code: MOV loads and stores, ALU, LEA, MOVZX/MOVSXD, rotates, SETcc and
    // CMOVcc, and a helper-call instruction now and then.
    private static void Simple(Assembler a, Random rng)
    {
        int pick = rng.Next(100);
        switch (pick)
        {
            case < 18: a.mov(R(rng), __qword_ptr[rsi + Disp(rng)]); break;
            case < 28: a.mov(__qword_ptr[rdi + Disp(rng)], R(rng)); break;
            case < 38: a.mov(R(rng), R(rng)); break;
            case < 42: a.mov(R32(rng), rng.Next(1 << 20)); break;
            case < 48: a.add(R(rng), R(rng)); break;
            case < 52: a.add(R(rng), rng.Next(1, 128)); break;
            case < 55: a.add(R(rng), __qword_ptr[rsi + Disp(rng)]); break;
            case < 61: a.xor(R32(rng), R32(rng)); break;
            case < 66: a.lea(R(rng), __qword_ptr[R(rng) + R(rng) * 2 + 0x10]); break;
            case < 70: a.movzx(R32(rng), __byte_ptr[rsi + Disp(rng)]); break;
            case < 73: a.and(R32(rng), 0xFF0); break;
            case < 76: a.ror(R(rng), 13); break;
            case < 78: a.rol(R32(rng), 7); break;
            case < 81: a.sub(R(rng), R(rng)); break;
            case < 83: a.movsxd(R(rng), __dword_ptr[rsi + Disp(rng)]); break;
            case < 85: a.shr(R(rng), 3); break;
            case < 87: a.or(R(rng), R(rng)); break;
            case < 89: a.inc(R32(rng)); break;
            case < 91: a.add(__qword_ptr[rdi + Disp(rng)], R(rng)); break;
            case < 93:
                a.cmp(R(rng), R(rng));
                a.cmovb(R(rng), R(rng));
                break;
            case < 95:
                a.test(R32(rng), R32(rng));
                a.sete(al);
                break;
            case < 97: a.bt(R(rng), (byte)rng.Next(64)); break;
            default: a.nop(); break;
        }
    }
}
