// One differential case: a code sequence (assembled with Iced at the case's address, 64-bit, CPL 3), the register
// file and FPU/SSE image it starts from, how the data pages are prepared, and what the SDM leaves undefined for it
// (flags, registers, x87/SSE state) so that only architecturally defined results are compared.
using Iced.Intel;

namespace Ringvisor.Emulator.Tests.Differential;

internal sealed class DiffCase
{
    public const ulong Cf = 1 << 0, Pf = 1 << 2, Af = 1 << 4, Zf = 1 << 6, Sf = 1 << 7, Df = 1 << 10, Of = 1 << 11;

    /// <summary>CF PF AF ZF SF OF (SDM Vol. 1 §3.4.3.1).</summary>
    public const ulong Arith = Cf | Pf | Af | Zf | Sf | Of;

    public DiffCase(string name, Action<Assembler> body)
    {
        Name = name;
        Body = body;
        Gpr[4] = DiffLayout.StackTop;
        Fx = DiffFx.Default();
    }

    public string Name { get; set; }

    public Action<Assembler> Body { get; set; }

    /// <summary>A case with random GPRs (RSP excepted) and random status flags; the caller sets name and body.</summary>
    public static DiffCase Randomized(Random rng)
    {
        var c = new DiffCase("", _ => { });
        DiffValues.FillGprs(rng, c);
        c.Flags = DiffValues.NextFlags(rng);
        return c;
    }

    /// <summary>Sets name and a one-instruction body.</summary>
    public DiffCase With(Instruction instruction, string? name = null)
    {
        Name = name ?? instruction.Code.ToString();
        Body = a => a.AddInstruction(instruction);
        return this;
    }

    /// <summary>RAX..R15 in encoding order (RAX RCX RDX RBX RSP RBP RSI RDI R8..R15); RSP defaults to the user stack.</summary>
    public ulong[] Gpr { get; } = new ulong[16];

    /// <summary>Status flags and DF to start with (OR-ed into <see cref="DiffLayout.BaseRflags"/>).</summary>
    public ulong Flags { get; set; }

    /// <summary>The 512-byte FXSAVE image the prologue loads with FXRSTOR64 (x87 state, MXCSR, XMM0-15).</summary>
    public byte[] Fx { get; set; }

    /// <summary>Adjusts the data pages after they were filled with the runner's pattern.</summary>
    public Action<Span<byte>>? PrepareData { get; set; }

    /// <summary>RFLAGS bits the SDM leaves undefined after this sequence (not compared).</summary>
    public ulong UndefinedFlags { get; set; }

    /// <summary>GPRs (bit n = register n in encoding order) whose value the SDM leaves undefined after this sequence.</summary>
    public int UndefinedGprs { get; set; }

    /// <summary>XMM registers (bit n = XMMn) left undefined.</summary>
    public int UndefinedXmm { get; set; }

    /// <summary>x87 status-word bits left undefined (e.g. C0/C2/C3 after arithmetic, SDM Vol. 1 §8.1.3.1).</summary>
    public ushort UndefinedFsw { get; set; }

    /// <summary>Ignore the x87 part of the image (status, tags, registers): for sequences whose x87 results are undefined.</summary>
    public bool UndefinedX87 { get; set; }

    /// <summary>The error code of this exception vector is not compared (e.g. #GP whose code is model-specific).</summary>
    public bool IgnoreErrorCode { get; set; }

    /// <summary>Set by the random generators: how to replay this case.</summary>
    public string? Origin { get; set; }

    public void SetXmm(int index, UInt128 value) => DiffFx.SetXmm(Fx, index, value);

    public void SetMxcsr(uint value) => DiffFx.SetMxcsr(Fx, value);

    public override string ToString() => Name;
}
