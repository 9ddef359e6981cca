// The comparison itself (no KVM needed): masked bits are ignored, everything else is reported.
namespace Ringvisor.Emulator.Tests.Differential;

public sealed class DiffComparerTests
{
    private static DiffOutcome Outcome(ulong rflags, ulong rax = 0, byte dataByte = 0, int vector = -1, ulong error = 0) => new()
    {
        Exit = vector < 0 ? "done" : $"#{vector}",
        Vector = vector,
        ErrorCode = error,
        Gpr = [rax, 0, 0, 0, DiffLayout.StackTop, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0],
        Rflags = rflags,
        Fx = DiffFx.Default(),
        Data = [dataByte, 0, 0, 0, 0, 0, 0, 0],
        Stack = new byte[8],
    };

    [Fact]
    public void Compare_DifferenceOnlyInUndefinedFlag_NoDifference()
    {
        var c = new DiffCase("t", _ => { }) { UndefinedFlags = DiffCase.Af };
        Assert.Empty(DiffComparer.Compare(c, Outcome(0x12), Outcome(0x02)));
    }

    [Fact]
    public void Compare_DifferenceInDefinedFlag_Reported()
    {
        var c = new DiffCase("t", _ => { }) { UndefinedFlags = DiffCase.Af };
        Assert.Contains(DiffComparer.Compare(c, Outcome(0x03), Outcome(0x02)), d => d.StartsWith("rflags", StringComparison.Ordinal));
    }

    [Fact]
    public void Compare_RegisterMarkedUndefined_IgnoredOthersReported()
    {
        var c = new DiffCase("t", _ => { }) { UndefinedGprs = 1 };
        Assert.Empty(DiffComparer.Compare(c, Outcome(2, rax: 1), Outcome(2, rax: 2)));
        Assert.Contains(DiffComparer.Compare(new DiffCase("t", _ => { }), Outcome(2, rax: 1), Outcome(2, rax: 2)), d => d.StartsWith("rax", StringComparison.Ordinal));
    }

    [Fact]
    public void Compare_DataOrExceptionDiffers_Reported()
    {
        var c = new DiffCase("t", _ => { });
        Assert.Contains(DiffComparer.Compare(c, Outcome(2, dataByte: 1), Outcome(2)), d => d.StartsWith("data", StringComparison.Ordinal));
        Assert.Contains(DiffComparer.Compare(c, Outcome(2, vector: 13), Outcome(2, vector: 12)), d => d.StartsWith("exit", StringComparison.Ordinal));
        Assert.Contains(DiffComparer.Compare(c, Outcome(2, vector: 13, error: 8), Outcome(2, vector: 13)), d => d.StartsWith("error code", StringComparison.Ordinal));
    }
}
