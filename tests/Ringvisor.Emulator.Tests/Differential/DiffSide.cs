// One engine of the differential pair (the bt interpreter, or KVM running CPL-3 code natively) with its own guest
// memory holding the DiffEnvironment. Runs a case to its end or to an exception and collects a DiffOutcome.
using Ringvisor.Core.Bus;
using Ringvisor.Core.Cpu;
using Ringvisor.Core.Memory;
using Ringvisor.Kvm;
using static Ringvisor.Emulator.Tests.Differential.DiffLayout;

namespace Ringvisor.Emulator.Tests.Differential;

internal sealed class DiffSide : IDisposable
{
    /// <summary>A hang guard (a case that never reaches its end), not a timing assertion.</summary>
    private const int HangMilliseconds = 10_000;

    private readonly IDisposable? _engine;
    private readonly BtVcpu? _bt;
    private readonly DiffExitPort _port;
    private readonly Timer _guard;
    private readonly CpuState _state = DiffEnvironment.UserState();
    private volatile bool _hung;

    private DiffSide(string name, GuestMemory memory, DiffExitPort port, IVcpu vcpu, IDisposable? engine, BtVcpu? bt)
    {
        Name = name;
        Memory = memory;
        _port = port;
        Vcpu = vcpu;
        _engine = engine;
        _bt = bt;
        port.Vcpu = vcpu;
        _guard = new Timer(_ =>
        {
            _hung = true;
            Vcpu.Kick();
        });
    }

    public string Name { get; }

    /// <summary>The bt engine's counters (null for KVM).</summary>
    public BtStats? Stats { get; private init; }

    public GuestMemory Memory { get; }

    public IVcpu Vcpu { get; }

    /// <summary>Set when the vCPU ended in a state it cannot continue from (the runner builds a new side).</summary>
    public bool Broken { get; private set; }

    public static DiffSide CreateKvm()
    {
        var memory = GuestMemory.Create(MemorySize);
        DiffEnvironment.Build(memory);
        var port = new DiffExitPort();
        var pio = new IoBus("pio", 0x1_0000);
        pio.Register(FirstPort, PortCount, port, "diff-exit");
        var engine = new KvmEngine(new EngineContext
        {
            Memory = memory,
            Pio = pio,
            Mmio = new IoBus("mmio", 1UL << 52),
            Control = port,
            VcpuCount = 1,
        });
        var vcpu = engine.CreateVcpu(0);
        return new DiffSide("kvm", memory, port, vcpu, engine, null);
    }

    /// <summary>The bt engine: interpreter only, or (<paramref name="translate"/>) translating every unit on its first
    /// execution, so the cases run as translated code (Translation/) wherever the translator covers them.</summary>
    public static DiffSide CreateBt(bool translate = false)
    {
        var memory = GuestMemory.Create(MemorySize);
        DiffEnvironment.Build(memory);
        var port = new DiffExitPort();
        var pio = new IoBus("pio", 0x1_0000);
        pio.Register(FirstPort, PortCount, port, "diff-exit");
        var host = new CpuHost(memory, pio, new IoBus("mmio", 1UL << 52))
        {
            Control = port,
            Options = new BtOptions { Translation = translate, TranslationThreshold = 1, BackgroundTranslation = false, CollectStats = translate },
        };
        var vcpu = new BtVcpu(host, 0);
        return new DiffSide("bt", memory, port, vcpu, null, vcpu) { Stats = host.Stats };
    }

    /// <summary>Runs <paramref name="code"/> (already assembled at <see cref="CodeBase"/>) from the case's start state.</summary>
    public DiffOutcome Run(DiffCase c, byte[] code, ReadOnlySpan<byte> data, ReadOnlySpan<byte> stack)
    {
        Put(CodeBase, code);
        _bt?.InvalidateCode(CodeBase, (ulong)code.Length);
        Put(Data, data);
        Put(Stack, stack);
        Put(FxIn, c.Fx);
        Assert.Equal(MemoryAccessResult.Ok, Memory.Fill(FxOut, DiffFx.Size, 0xCC));

        _state.Registers = DiffEnvironment.ToRegisters(c.Gpr, CodeBase, BaseRflags | c.Flags);
        Vcpu.SetState(_state);

        int port = RunToPort(out string? failure);
        if (port < 0)
        {
            return new DiffOutcome { Exit = failure ?? "no exit" };
        }

        ulong doneOut = CodeBase + (ulong)code.Length - 2;
        if (port == DonePort)
        {
            return Collect("done", -1, doneOut, default);
        }

        if (port is (>= ExceptionPortBase and < ExceptionPortBase + 32) or OtherVectorPort)
        {
            int vector = port == OtherVectorPort ? 256 : port - ExceptionPortBase;
            bool error = vector < 32 && DiffEnvironment.HasErrorCode(vector);
            ulong frame = KernelStackTop - (error ? 48UL : 40UL);
            var f = new Frame
            {
                ErrorCode = error ? Read64(frame) : 0,
                Rip = Read64(frame + (error ? 8UL : 0)),
                Rflags = Read64(frame + (error ? 24UL : 16)),
                Rsp = Read64(frame + (error ? 32UL : 24)),
                Cr2 = Vcpu.GetState().System.Cr2,
            };

            int dump = RunToPort(out failure);
            if (dump != DumpPort)
            {
                return new DiffOutcome { Exit = $"exception #{vector} at {f.Rip:X}, then {failure ?? $"port {dump:X}"} instead of the dump stub" };
            }

            return Collect($"#{vector}", vector, DiffEnvironment.DumpOut, f);
        }

        return new DiffOutcome { Exit = $"unexpected port {port:X}" };
    }

    private DiffOutcome Collect(string exit, int vector, ulong outAddress, Frame f)
    {
        var s = Vcpu.GetState();
        ulong rip = s.Registers.Rip;

        // After the final OUT one engine may report RIP at the OUT (its completion pending) and the other after it.
        if (rip == outAddress + 2)
        {
            rip = outAddress;
        }

        var fx = new byte[DiffFx.Size];
        var data = new byte[DataSize];
        var stack = new byte[StackSize];
        Assert.Equal(MemoryAccessResult.Ok, Memory.Read(FxOut, fx));
        Assert.Equal(MemoryAccessResult.Ok, Memory.Read(Data, data));
        Assert.Equal(MemoryAccessResult.Ok, Memory.Read(Stack, stack));
        return new DiffOutcome
        {
            Exit = exit,
            Vector = vector,
            ErrorCode = f.ErrorCode,
            FaultRip = f.Rip,
            FrameRflags = f.Rflags,
            FrameRsp = f.Rsp,
            Cr2 = f.Cr2,
            Gpr = DiffEnvironment.FromRegisters(s.Registers),
            Rip = rip,
            Rflags = s.Registers.Rflags,
            Fx = fx,
            Data = data,
            Stack = stack,
        };
    }

    private int RunToPort(out string? failure)
    {
        failure = null;
        _port.Reset();
        _hung = false;
        _guard.Change(HangMilliseconds, Timeout.Infinite);
        try
        {
            while (true)
            {
                var exit = Vcpu.Run();
                if (_port.Port >= 0)
                {
                    return _port.Port;
                }

                if (exit.Reason == VcpuExitReason.Kicked && !_hung)
                {
                    continue;
                }

                Broken = true;
                var s = Vcpu.GetState();
                failure = (_hung ? "hang" : $"{exit.Reason} {exit.Detail}") + $" at cs:rip {s.System.Cs.Selector:X}:{s.Registers.Rip:X}";
                return -1;
            }
        }
        finally
        {
            _guard.Change(Timeout.Infinite, Timeout.Infinite);
        }
    }

    private void Put(ulong gpa, ReadOnlySpan<byte> bytes) => Assert.Equal(MemoryAccessResult.Ok, Memory.Write(gpa, bytes));

    private ulong Read64(ulong gpa)
    {
        Assert.True(Memory.TryRead(gpa, out ulong v));
        return v;
    }

    public void Dispose()
    {
        _guard.Dispose();
        Vcpu.Dispose();
        _engine?.Dispose();
        Memory.Dispose();
    }

    private readonly record struct Frame(ulong ErrorCode, ulong Rip, ulong Rflags, ulong Rsp, ulong Cr2);
}
