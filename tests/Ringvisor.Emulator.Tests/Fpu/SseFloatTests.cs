using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using Iced.Intel;
using Ringvisor.Emulator.Fpu;
using static Iced.Intel.AssemblerRegisters;

namespace Ringvisor.Emulator.Tests.Fpu;

/// <summary>SSE floating point: results against the host CPU (round to nearest, the only mode .NET runs in) and
/// against exactly computed double-precision references for the directed rounding modes; MXCSR flags against
/// SDM-specified cases.</summary>
public class SseFloatTests
{
    private const uint MxcsrIe = 1 << 0;
    private const uint MxcsrDe = 1 << 1;
    private const uint MxcsrZe = 1 << 2;
    private const uint MxcsrOe = 1 << 3;
    private const uint MxcsrUe = 1 << 4;
    private const uint MxcsrPe = 1 << 5;

    private delegate Vector128<byte> Oracle(Vector128<byte> x, Vector128<byte> y);

    private static readonly Dictionary<string, (Action<Assembler> Emit, Oracle Oracle)> s_cases = new()
    {
        ["addps"] = (a => a.addps(xmm0, xmm1), (x, y) => Sse.Add(x.AsSingle(), y.AsSingle()).AsByte()),
        ["subps"] = (a => a.subps(xmm0, xmm1), (x, y) => Sse.Subtract(x.AsSingle(), y.AsSingle()).AsByte()),
        ["mulps"] = (a => a.mulps(xmm0, xmm1), (x, y) => Sse.Multiply(x.AsSingle(), y.AsSingle()).AsByte()),
        ["divps"] = (a => a.divps(xmm0, xmm1), (x, y) => Sse.Divide(x.AsSingle(), y.AsSingle()).AsByte()),
        ["sqrtps"] = (a => a.sqrtps(xmm0, xmm1), (x, y) => Sse.Sqrt(y.AsSingle()).AsByte()),
        ["minps"] = (a => a.minps(xmm0, xmm1), (x, y) => Sse.Min(x.AsSingle(), y.AsSingle()).AsByte()),
        ["maxps"] = (a => a.maxps(xmm0, xmm1), (x, y) => Sse.Max(x.AsSingle(), y.AsSingle()).AsByte()),
        ["addss"] = (a => a.addss(xmm0, xmm1), (x, y) => Sse.AddScalar(x.AsSingle(), y.AsSingle()).AsByte()),
        ["divss"] = (a => a.divss(xmm0, xmm1), (x, y) => Sse.DivideScalar(x.AsSingle(), y.AsSingle()).AsByte()),
        ["addpd"] = (a => a.addpd(xmm0, xmm1), (x, y) => Sse2.Add(x.AsDouble(), y.AsDouble()).AsByte()),
        ["subpd"] = (a => a.subpd(xmm0, xmm1), (x, y) => Sse2.Subtract(x.AsDouble(), y.AsDouble()).AsByte()),
        ["mulpd"] = (a => a.mulpd(xmm0, xmm1), (x, y) => Sse2.Multiply(x.AsDouble(), y.AsDouble()).AsByte()),
        ["divpd"] = (a => a.divpd(xmm0, xmm1), (x, y) => Sse2.Divide(x.AsDouble(), y.AsDouble()).AsByte()),
        ["sqrtpd"] = (a => a.sqrtpd(xmm0, xmm1), (x, y) => Sse2.Sqrt(y.AsDouble()).AsByte()),
        ["minsd"] = (a => a.minsd(xmm0, xmm1), (x, y) => Sse2.MinScalar(x.AsDouble(), y.AsDouble()).AsByte()),
        ["maxpd"] = (a => a.maxpd(xmm0, xmm1), (x, y) => Sse2.Max(x.AsDouble(), y.AsDouble()).AsByte()),
        ["mulsd"] = (a => a.mulsd(xmm0, xmm1), (x, y) => Sse2.MultiplyScalar(x.AsDouble(), y.AsDouble()).AsByte()),
        ["cmpps_lt"] = (a => a.cmpps(xmm0, xmm1, 1),
            (x, y) => Sse.CompareLessThan(x.AsSingle(), y.AsSingle()).AsByte()),
        ["cmpps_unord"] = (a => a.cmpps(xmm0, xmm1, 3),
            (x, y) => Sse.CompareUnordered(x.AsSingle(), y.AsSingle()).AsByte()),
        ["cmppd_nle"] = (a => a.cmppd(xmm0, xmm1, 6),
            (x, y) => Sse2.CompareNotLessThanOrEqual(x.AsDouble(), y.AsDouble()).AsByte()),
        ["cmpsd_eq"] = (a => a.cmpsd(xmm0, xmm1, 0),
            (x, y) => Sse2.CompareScalarEqual(x.AsDouble(), y.AsDouble()).AsByte()),
        ["addsubps"] = (a => a.addsubps(xmm0, xmm1), (x, y) => Sse3.AddSubtract(x.AsSingle(), y.AsSingle()).AsByte()),
        ["haddps"] = (a => a.haddps(xmm0, xmm1), (x, y) => Sse3.HorizontalAdd(x.AsSingle(), y.AsSingle()).AsByte()),
        ["hsubpd"] = (a => a.hsubpd(xmm0, xmm1),
            (x, y) => Sse3.HorizontalSubtract(x.AsDouble(), y.AsDouble()).AsByte()),
        ["cvtps2pd"] = (a => a.cvtps2pd(xmm0, xmm1), (x, y) => Sse2.ConvertToVector128Double(y.AsSingle()).AsByte()),
        ["cvtpd2ps"] = (a => a.cvtpd2ps(xmm0, xmm1), (x, y) => Sse2.ConvertToVector128Single(y.AsDouble()).AsByte()),
        ["cvtdq2ps"] = (a => a.cvtdq2ps(xmm0, xmm1), (x, y) => Sse2.ConvertToVector128Single(y.AsInt32()).AsByte()),
        ["cvtps2dq"] = (a => a.cvtps2dq(xmm0, xmm1), (x, y) => Sse2.ConvertToVector128Int32(y.AsSingle()).AsByte()),
        ["cvttps2dq"] = (a => a.cvttps2dq(xmm0, xmm1),
            (x, y) => Sse2.ConvertToVector128Int32WithTruncation(y.AsSingle()).AsByte()),
        ["cvtpd2dq"] = (a => a.cvtpd2dq(xmm0, xmm1), (x, y) => Sse2.ConvertToVector128Int32(y.AsDouble()).AsByte()),
        ["cvtdq2pd"] = (a => a.cvtdq2pd(xmm0, xmm1), (x, y) => Sse2.ConvertToVector128Double(y.AsInt32()).AsByte()),
        ["cvtsd2ss"] = (a => a.cvtsd2ss(xmm0, xmm1),
            (x, y) => Sse2.ConvertScalarToVector128Single(x.AsSingle(), y.AsDouble()).AsByte()),
        ["cvtss2sd"] = (a => a.cvtss2sd(xmm0, xmm1),
            (x, y) => Sse2.ConvertScalarToVector128Double(x.AsDouble(), y.AsSingle()).AsByte()),
        ["rcpps"] = (a => a.rcpps(xmm0, xmm1), (x, y) => Sse.Reciprocal(y.AsSingle()).AsByte()),
        ["rsqrtss"] = (a => a.rsqrtss(xmm0, xmm1),
            (x, y) => Sse.ReciprocalSqrtScalar(x.AsSingle(), y.AsSingle()).AsByte()),
    };

    public static TheoryData<string> Names => [.. s_cases.Keys];

    [Theory]
    [MemberData(nameof(Names))]
    public void Execute_RoundToNearest_MatchesHostCpuBits(string name)
    {
        if (!Sse3.IsSupported)
        {
            return; // The oracle is the host CPU.
        }

        var (emit, oracle) = s_cases[name];
        var instruction = Asm.One(emit);
        var dbl = name.Contains("pd") || name.EndsWith("sd", StringComparison.Ordinal) || name.Contains("sd_")
            || name == "cvtpd2ps" || name == "cvtpd2dq";
        var rng = new Random(name.GetHashCode(StringComparison.Ordinal) & 0xFFFF);
        for (var n = 0; n < 300; n++)
        {
            var x = RandomFloats(rng, dbl);
            var y = RandomFloats(rng, dbl);
            var state = new FpuState();
            state.Xmm[0] = x;
            state.Xmm[1] = y;
            Assert.Equal(SimdOutcome.Ok, SimdExecutor.Execute(in instruction, state, new FakeSimdAccess()));
            var expected = oracle(x, y);
            Assert.True(expected == state.Xmm[0],
                $"{name}: x={Hex(x)} y={Hex(y)} expected={Hex(expected)} actual={Hex(state.Xmm[0])}");
        }
    }

    private static string Hex(Vector128<byte> v) => $"{v.AsUInt64().GetElement(1):X16}_{v.AsUInt64().GetElement(0):X16}";

    /// <summary>Values from every class: normals of all magnitudes, denormals, zeros, infinities, QNaN/SNaN with
    /// payloads, and near-overflow / near-underflow operands.</summary>
    private static Vector128<byte> RandomFloats(Random rng, bool dbl)
    {
        Span<ulong> lanes = stackalloc ulong[2];
        for (var k = 0; k < (dbl ? 2 : 4); k++)
        {
            ulong bits;
            var kind = rng.Next(12);
            if (dbl)
            {
                var sign = (ulong)rng.Next(2) << 63;
                var frac = (ulong)rng.NextInt64() & 0xF_FFFF_FFFF_FFFF;
                bits = kind switch
                {
                    0 => sign,
                    1 => sign | frac,
                    2 => sign | 0x7FF0_0000_0000_0000,
                    3 => sign | 0x7FF8_0000_0000_0000 | frac,
                    4 => sign | 0x7FF0_0000_0000_0001 | (frac >> 1),
                    5 => sign | ((ulong)rng.Next(2040, 2047) << 52) | frac,
                    6 => sign | ((ulong)rng.Next(1, 8) << 52) | frac,
                    _ => sign | ((ulong)rng.Next(900, 1150) << 52) | frac,
                };
                if (k < 2)
                {
                    lanes[k] = bits;
                }
            }
            else
            {
                var sign = (uint)rng.Next(2) << 31;
                var frac = (uint)rng.Next() & 0x7F_FFFF;
                var bits32 = kind switch
                {
                    0 => sign,
                    1 => sign | frac,
                    2 => sign | 0x7F80_0000,
                    3 => sign | 0x7FC0_0000 | frac,
                    4 => sign | 0x7F80_0001 | (frac >> 1),
                    5 => sign | ((uint)rng.Next(250, 255) << 23) | frac,
                    6 => sign | ((uint)rng.Next(1, 8) << 23) | frac,
                    7 => BitConverter.SingleToUInt32Bits(rng.Next(-100000, 100000) / 4f),
                    _ => sign | ((uint)rng.Next(100, 160) << 23) | frac,
                };
                lanes[k / 2] |= (ulong)bits32 << (32 * (k % 2));
            }
        }

        return Vector128.Create((ReadOnlySpan<ulong>)lanes).AsByte();
    }

    /// <summary>MULSS in every rounding mode against an exact double product rounded by hand.</summary>
    [Theory]
    [InlineData(0)]
    [InlineData(1)]
    [InlineData(2)]
    [InlineData(3)]
    public void Mulss_AllRoundingModes_MatchExactProductRounded(int rc)
    {
        var ins = Asm.One(a => a.mulss(xmm0, xmm1));
        var rng = new Random(rc + 100);
        for (var n = 0; n < 500; n++)
        {
            var x = (float)(rng.NextDouble() * 200 - 100);
            var y = (float)(rng.NextDouble() * 2e-3);
            var exact = (double)x * y; // exact: 24 + 24 bits fit in 53
            var expected = RoundFloat(exact, rc);
            var state = new FpuState { Mxcsr = 0x1F80 | ((uint)rc << 13) };
            state.Xmm[0] = Vector128.CreateScalar(x).AsByte();
            state.Xmm[1] = Vector128.CreateScalar(y).AsByte();
            Assert.Equal(SimdOutcome.Ok, SimdExecutor.Execute(in ins, state, new FakeSimdAccess()));
            Assert.Equal(BitConverter.SingleToUInt32Bits(expected), state.Xmm[0].AsUInt32().ToScalar());
            var inexact = (double)expected != exact;
            Assert.Equal(inexact, (state.Mxcsr & MxcsrPe) != 0);
        }
    }

    private static float RoundFloat(double exact, int rc)
    {
        var f = (float)exact;
        switch (rc)
        {
            case 1 when f > exact:
                return MathF.BitDecrement(f);
            case 2 when f < exact:
                return MathF.BitIncrement(f);
            case 3 when Math.Abs(f) > Math.Abs(exact):
                return exact > 0 ? MathF.BitDecrement(f) : MathF.BitIncrement(f);
            default:
                return f;
        }
    }

    [Theory]
    [InlineData(1.0f, 0.0f, MxcsrZe, 0x7F80_0000u)] // 1/0 = +inf, divide-by-zero
    [InlineData(0.0f, 0.0f, MxcsrIe, 0xFFC0_0000u)] // 0/0 = default NaN, invalid
    [InlineData(1.0f, 3.0f, MxcsrPe, 0x3EAA_AAABu)] // 1/3 inexact
    [InlineData(1e-30f, 1e10f, MxcsrUe | MxcsrPe, 0x0000_0007u)] // denormal result, inexact
    [InlineData(3e38f, 0.05f, MxcsrOe | MxcsrPe, 0x7F80_0000u)] // 6e39 > FLT_MAX: masked overflow gives +inf
    public void Divss_IeeeConditions_SetMxcsrFlags(float x, float y, uint flags, uint result)
    {
        var ins = Asm.One(a => a.divss(xmm0, xmm1));
        var state = new FpuState();
        state.Xmm[0] = Vector128.CreateScalar(x).AsByte();
        state.Xmm[1] = Vector128.CreateScalar(y).AsByte();
        Assert.Equal(SimdOutcome.Ok, SimdExecutor.Execute(in ins, state, new FakeSimdAccess()));
        Assert.Equal(flags, state.Mxcsr & 0x3F);
        if (x != 1e-30f)
        {
            Assert.Equal(result, state.Xmm[0].AsUInt32().ToScalar());
        }
        else
        {
            Assert.Equal(BitConverter.SingleToUInt32Bits(1e-30f / 1e10f), state.Xmm[0].AsUInt32().ToScalar());
        }
    }

    [Fact]
    public void Mulss_TinyAfterRoundingOnly_NoUnderflowFlag()
    {
        // (1 + 2^-23) * 0x007FFFFF rounds up to the smallest normal: x86 detects tininess after rounding, so only
        // PE and DE (denormal operand) are set. Checked on the host with _mm_getcsr: MXCSR 0x1FA2.
        var ins = Asm.One(a => a.mulss(xmm0, xmm1));
        var state = new FpuState();
        state.Xmm[0] = Vector128.CreateScalar(0x3F80_0001u).AsByte();
        state.Xmm[1] = Vector128.CreateScalar(0x007F_FFFFu).AsByte();
        Assert.Equal(SimdOutcome.Ok, SimdExecutor.Execute(in ins, state, new FakeSimdAccess()));
        Assert.Equal(0x0080_0000u, state.Xmm[0].AsUInt32().ToScalar());
        Assert.Equal(0x1FA2u, state.Mxcsr);
    }

    [Fact]
    public void Addss_DenormalWithDaz_TreatedAsZeroWithoutDenormalFlag()
    {
        var ins = Asm.One(a => a.addss(xmm0, xmm1));
        var state = new FpuState { Mxcsr = 0x1F80 | (1 << 6) };
        state.Xmm[0] = Vector128.CreateScalar(0x0000_0001u).AsByte();
        state.Xmm[1] = Vector128.CreateScalar(0x8000_0000u).AsByte();
        Assert.Equal(SimdOutcome.Ok, SimdExecutor.Execute(in ins, state, new FakeSimdAccess()));
        Assert.Equal(0u, state.Xmm[0].AsUInt32().ToScalar());
        Assert.Equal(0u, state.Mxcsr & 0x3F);
    }

    [Fact]
    public void Mulss_TinyResultWithFtz_FlushesToZeroWithUnderflowAndPrecision()
    {
        var ins = Asm.One(a => a.mulss(xmm0, xmm1));
        var state = new FpuState { Mxcsr = 0x1F80 | 0x8000 };
        state.Xmm[0] = Vector128.CreateScalar(-1e-20f).AsByte();
        state.Xmm[1] = Vector128.CreateScalar(1e-20f).AsByte();
        Assert.Equal(SimdOutcome.Ok, SimdExecutor.Execute(in ins, state, new FakeSimdAccess()));
        Assert.Equal(0x8000_0000u, state.Xmm[0].AsUInt32().ToScalar());
        Assert.Equal(MxcsrUe | MxcsrPe, state.Mxcsr & 0x3F);
    }

    [Theory]
    [InlineData(true, SimdOutcome.SimdFloatingPointException)]
    [InlineData(false, SimdOutcome.InvalidOpcode)]
    public void Divss_UnmaskedZeroDivide_FaultsAndKeepsDestination(bool osxmmexcpt, SimdOutcome expected)
    {
        var ins = Asm.One(a => a.divss(xmm0, xmm1));
        var state = new FpuState { Mxcsr = 0x1F80 & ~(1u << 9) };
        state.Xmm[0] = Vector128.CreateScalar(1.0f).AsByte();
        var access = new FakeSimdAccess();
        if (!osxmmexcpt)
        {
            access.Cr4 &= ~Ringvisor.Core.Cpu.SystemRegisters.Cr4Osxmmexcpt;
        }

        Assert.Equal(expected, SimdExecutor.Execute(in ins, state, access));
        Assert.Equal(1.0f, state.Xmm[0].AsSingle().ToScalar());
        Assert.Equal(MxcsrZe, state.Mxcsr & 0x3F);
    }

    [Theory]
    [InlineData(1.0, 2.0, false, 0x01UL)] // less: CF
    [InlineData(2.0, 1.0, false, 0x00UL)] // greater
    [InlineData(1.5, 1.5, false, 0x40UL)] // equal: ZF
    [InlineData(double.NaN, 1.0, true, 0x45UL)] // unordered: ZF PF CF; COMISD signals invalid on QNaN
    public void Comisd_Orders_SetZfPfCf(double x, double y, bool invalid, ulong flags)
    {
        var ins = Asm.One(a => a.comisd(xmm0, xmm1));
        var state = new FpuState();
        state.Xmm[0] = Vector128.CreateScalar(x).AsByte();
        state.Xmm[1] = Vector128.CreateScalar(y).AsByte();
        var access = new FakeSimdAccess { Rflags = 0x2 | 0x800 | 0x80 | 0x10 };
        Assert.Equal(SimdOutcome.Ok, SimdExecutor.Execute(in ins, state, access));
        Assert.Equal(0x2 | flags, access.Rflags);
        Assert.Equal(invalid, (state.Mxcsr & MxcsrIe) != 0);
    }

    [Fact]
    public void Ucomisd_QuietNaN_NoInvalid()
    {
        var ins = Asm.One(a => a.ucomisd(xmm0, xmm1));
        var state = new FpuState();
        state.Xmm[0] = Vector128.CreateScalar(double.NaN).AsByte();
        var access = new FakeSimdAccess();
        Assert.Equal(SimdOutcome.Ok, SimdExecutor.Execute(in ins, state, access));
        Assert.Equal(0x2UL | 0x45, access.Rflags);
        Assert.Equal(0u, state.Mxcsr & 0x3F);
    }

    [Theory]
    [InlineData(2.5f, 0, 2L)]
    [InlineData(3.5f, 0, 4L)]
    [InlineData(-2.5f, 1, -3L)]
    [InlineData(2.1f, 2, 3L)]
    [InlineData(-2.9f, 3, -2L)]
    [InlineData(3e9f, 0, int.MinValue)]
    [InlineData(float.NaN, 0, int.MinValue)]
    public void Cvtss2si_RoundingControlAndIndefinite(float value, int rc, long expected)
    {
        var ins = Asm.One(a => a.cvtss2si(eax, xmm1));
        var state = new FpuState { Mxcsr = 0x1F80 | ((uint)rc << 13) };
        state.Xmm[1] = Vector128.CreateScalar(value).AsByte();
        var access = new FakeSimdAccess();
        access.Gprs[Register.RAX] = ulong.MaxValue;
        Assert.Equal(SimdOutcome.Ok, SimdExecutor.Execute(in ins, state, access));
        Assert.Equal((ulong)(uint)(int)expected, access.Gprs[Register.RAX]);
    }

    [Fact]
    public void Cvttsd2si_Rax_TruncatesTo64Bit()
    {
        var ins = Asm.One(a => a.cvttsd2si(rax, xmm1));
        var state = new FpuState();
        state.Xmm[1] = Vector128.CreateScalar(-12345678901.75).AsByte();
        var access = new FakeSimdAccess();
        Assert.Equal(SimdOutcome.Ok, SimdExecutor.Execute(in ins, state, access));
        Assert.Equal(unchecked((ulong)-12345678901L), access.Gprs[Register.RAX]);
        Assert.Equal(MxcsrPe, state.Mxcsr & 0x3F);
    }

    [Fact]
    public void Cvtsi2sd_FromMemory64_Rounds()
    {
        var ins = Asm.One(a => a.cvtsi2sd(xmm2, __qword_ptr[rbx]));
        var state = new FpuState();
        state.Xmm[2] = Vector128.Create(0UL, 0xABCDUL).AsByte();
        var access = new FakeSimdAccess();
        access.Gprs[Register.RBX] = 0x400;
        access.WriteBytes(0x400, BitConverter.GetBytes(long.MaxValue));
        Assert.Equal(SimdOutcome.Ok, SimdExecutor.Execute(in ins, state, access));
        Assert.Equal(BitConverter.DoubleToUInt64Bits(long.MaxValue), state.Xmm[2].AsUInt64().ToScalar());
        Assert.Equal(0xABCDUL, state.Xmm[2].AsUInt64().GetElement(1));
        Assert.Equal(MxcsrPe, state.Mxcsr & 0x3F);
    }

    [Fact]
    public void Addps_DenormalOperand_SetsDenormalFlag()
    {
        var ins = Asm.One(a => a.addps(xmm0, xmm1));
        var state = new FpuState();
        state.Xmm[0] = Vector128.CreateScalar(0x0000_0010u).AsByte();
        Assert.Equal(SimdOutcome.Ok, SimdExecutor.Execute(in ins, state, new FakeSimdAccess()));
        Assert.Equal(MxcsrDe, state.Mxcsr & 0x3F);
    }

    [Fact]
    public void Addss_SignalingNaN_QuietsAndSignalsInvalid()
    {
        var ins = Asm.One(a => a.addss(xmm0, xmm1));
        var state = new FpuState();
        state.Xmm[0] = Vector128.CreateScalar(1.0f).AsByte();
        state.Xmm[1] = Vector128.CreateScalar(0x7F80_1234u).AsByte();
        Assert.Equal(SimdOutcome.Ok, SimdExecutor.Execute(in ins, state, new FakeSimdAccess()));
        Assert.Equal(0x7FC0_1234u, state.Xmm[0].AsUInt32().ToScalar());
        Assert.Equal(MxcsrIe, state.Mxcsr & 0x3F);
    }

    [Theory]
    [InlineData(0x006B_C79Au, 0x0000_0000u, MxcsrZe)] // denormal / 0: the zero divisor hides DE
    [InlineData(0x7FC0_0001u, 0x0000_0010u, 0u)] // QNaN op denormal: the NaN hides DE
    [InlineData(0x7F80_0001u, 0x0000_0010u, MxcsrIe)] // SNaN op denormal: only IE
    [InlineData(0x3F80_0000u, 0x0000_0010u, MxcsrDe | MxcsrOe | MxcsrPe)] // 1 / 2^-145 overflows: DE is kept
    public void Divss_ExceptionPrecedence_DenormalHiddenByNaNAndZeroDivide(uint x, uint y, uint flags)
    {
        var ins = Asm.One(a => a.divss(xmm0, xmm1));
        var state = new FpuState();
        state.Xmm[0] = Vector128.CreateScalar(x).AsByte();
        state.Xmm[1] = Vector128.CreateScalar(y).AsByte();
        Assert.Equal(SimdOutcome.Ok, SimdExecutor.Execute(in ins, state, new FakeSimdAccess()));
        Assert.Equal(flags, state.Mxcsr & 0x3F);
    }

    [Fact]
    public void Cvttss2si_DenormalSource_OnlyPrecision()
    {
        var ins = Asm.One(a => a.cvttss2si(eax, xmm1));
        var state = new FpuState();
        state.Xmm[1] = Vector128.CreateScalar(0x0000_0001u).AsByte();
        Assert.Equal(SimdOutcome.Ok, SimdExecutor.Execute(in ins, state, new FakeSimdAccess()));
        Assert.Equal(MxcsrPe, state.Mxcsr & 0x3F);
    }

    [Fact]
    public void Addps_UnmaskedInvalidInOneLane_NoPostComputationFlagsAnywhere()
    {
        // SDM Vol. 1 11.5.1: an unmasked pre-computation exception stops the instruction before any lane computes,
        // so the inexact lane 1 reports nothing.
        var ins = Asm.One(a => a.addps(xmm0, xmm1));
        var state = new FpuState { Mxcsr = 0x1F80 & ~(1u << 7) }; // IM clear
        state.Xmm[0] = Vector128.Create(0x7F80_0001u, 0x3F80_0000u, 0, 0).AsByte(); // SNaN, 1.0
        state.Xmm[1] = Vector128.Create(0x3F80_0000u, 0x3380_0000u, 0, 0).AsByte(); // 1.0, 2^-24
        var before = state.Xmm[0];
        Assert.Equal(SimdOutcome.SimdFloatingPointException, SimdExecutor.Execute(in ins, state, new FakeSimdAccess()));
        Assert.Equal(MxcsrIe, state.Mxcsr & 0x3F);
        Assert.Equal(before, state.Xmm[0]);
    }

    [Fact]
    public void Mulss_UnmaskedUnderflow_FaultsWithFlagsAndKeepsDestination()
    {
        var ins = Asm.One(a => a.mulss(xmm0, xmm1));
        var state = new FpuState { Mxcsr = 0x1F80 & ~(1u << 11) }; // UM clear
        state.Xmm[0] = Vector128.CreateScalar(1e-20f).AsByte();
        state.Xmm[1] = Vector128.CreateScalar(1e-20f).AsByte();
        Assert.Equal(SimdOutcome.SimdFloatingPointException, SimdExecutor.Execute(in ins, state, new FakeSimdAccess()));
        Assert.Equal(MxcsrUe | MxcsrPe, state.Mxcsr & 0x3F);
        Assert.Equal(1e-20f, state.Xmm[0].AsSingle().ToScalar());
    }
}
