// Runs cases on both engines (one KVM VM/vCPU and one bt vCPU reused for every case; state is reset through SetState
// and by rewriting the code, data, stack and FXSAVE pages) and collects the cases whose outcomes differ.
using System.Text;
using Iced.Intel;
using static Iced.Intel.AssemblerRegisters;
using static Ringvisor.Emulator.Tests.Differential.DiffLayout;

namespace Ringvisor.Emulator.Tests.Differential;

internal sealed class DiffRunner : IDisposable
{
    private readonly byte[] _data = new byte[DataSize];
    private readonly byte[] _stack = new byte[StackSize];
    private readonly byte[] _caseData = new byte[DataSize];
    private DiffSide _kvm;
    private DiffSide _bt;

    private readonly bool _translate;

    /// <param name="patternSeed">Seed of the data and stack patterns.</param>
    /// <param name="translate">Run the bt side with translation forced (every unit translated on first execution).</param>
    public DiffRunner(int patternSeed = 0x5EED, bool translate = false)
    {
        _translate = translate;
        // A fixed pattern, so memory operands read varied but reproducible values.
        var rng = new Random(patternSeed);
        rng.NextBytes(_data);
        rng.NextBytes(_stack);
        _kvm = DiffSide.CreateKvm();
        _bt = DiffSide.CreateBt(_translate);
    }

    public int CasesRun { get; private set; }

    /// <summary>Instructions the bt side ran as translated code (counted in translate mode only; a renewed side restarts it).</summary>
    public long TranslatedInstructions => _translatedBefore + (_bt.Stats?.TranslatedInstructions ?? 0);

    private long _translatedBefore;

    public int Exceptions { get; private set; }

    public List<string> Mismatches { get; } = [];

    /// <summary>Runs one case; returns the differences (empty when both engines agree).</summary>
    public List<string> Run(DiffCase c)
    {
        byte[] code = Assemble(c);
        _data.CopyTo(_caseData, 0);
        c.PrepareData?.Invoke(_caseData);
        var kvm = _kvm.Run(c, code, _caseData, _stack);
        var bt = _bt.Run(c, code, _caseData, _stack);
        Renew();
        CasesRun++;
        if (kvm.Vector >= 0)
        {
            Exceptions++;
        }

        var diffs = DiffComparer.Compare(c, kvm, bt);
        if (diffs.Count > 0)
        {
            Mismatches.Add(Describe(c, code, diffs));
        }

        return diffs;
    }

    public void RunAll(IEnumerable<DiffCase> cases)
    {
        foreach (var c in cases)
        {
            _ = Run(c);
        }
    }

    /// <summary>Fails the test with the first mismatches, each with its code, inputs and differences.</summary>
    public void AssertNoMismatch(int show = 12, string? context = null)
    {
        if (Mismatches.Count == 0)
        {
            return;
        }

        var sb = new StringBuilder();
        if (context is not null)
        {
            sb.AppendLine(context);
        }

        sb.Append(Mismatches.Count).Append(" of ").Append(CasesRun).AppendLine(_translate ? " cases differ between KVM (the real CPU) and the bt engine's translated code:" : " cases differ between KVM (the real CPU) and the bt interpreter:");
        foreach (string m in Mismatches.Take(show))
        {
            sb.AppendLine(m);
        }

        Assert.Fail(sb.ToString());
    }

    private void Renew()
    {
        if (_kvm.Broken)
        {
            _kvm.Dispose();
            _kvm = DiffSide.CreateKvm();
        }

        if (_bt.Broken)
        {
            _translatedBefore += _bt.Stats?.TranslatedInstructions ?? 0;
            _bt.Dispose();
            _bt = DiffSide.CreateBt(_translate);
        }
    }

    public static byte[] Assemble(DiffCase c)
    {
        byte[] code = DiffEnvironment.Assemble(CodeBase, a =>
        {
            a.fxrstor64(__[FxIn]);
            c.Body(a);
            a.fxsave64(__[FxOut]);
            a.@out(DonePort, al);
        });
        Assert.True(code.Length <= CodeMax, $"{c.Name}: code too large");
        return code;
    }

    public static string Describe(DiffCase c, byte[] code, List<string> diffs)
    {
        var sb = new StringBuilder();
        sb.Append("== ").Append(c.Name);
        if (c.Origin is { } o)
        {
            sb.Append("  [").Append(o).Append(']');
        }

        sb.AppendLine();
        sb.Append("   code:");
        var decoder = Iced.Intel.Decoder.Create(64, new ByteArrayCodeReader(code));
        decoder.IP = CodeBase;
        var formatter = new IntelFormatter();
        var output = new StringOutput();
        var list = new List<Instruction>();
        while (decoder.IP < CodeBase + (ulong)code.Length)
        {
            list.Add(decoder.Decode());
        }

        // Leave out the prologue (FXRSTOR64) and the epilogue (FXSAVE64, OUT).
        foreach (var ins in list.Skip(1).Take(list.Count - 3))
        {
            formatter.Format(ins, output);
            sb.Append(' ').Append(output.ToStringAndReset()).Append(';');
        }

        sb.AppendLine();
        sb.Append("   in:");
        for (int i = 0; i < 16; i++)
        {
            sb.Append(' ').Append(DiffComparer.GprName(i)).Append('=').Append(c.Gpr[i].ToString("X"));
        }

        sb.Append(" rflags=").Append((BaseRflags | c.Flags).ToString("X"));
        sb.Append(" mxcsr=").Append(DiffFx.GetMxcsr(c.Fx).ToString("X"));
        sb.AppendLine();
        foreach (string d in diffs)
        {
            sb.Append("   ").AppendLine(d);
        }

        return sb.ToString();
    }

    public void Dispose()
    {
        _kvm.Dispose();
        _bt.Dispose();
    }
}
