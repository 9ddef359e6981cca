using System.Buffers.Binary;
using Iced.Intel;
using Ringvisor.Emulator.Fpu;
using static Iced.Intel.AssemblerRegisters;

namespace Ringvisor.Emulator.Tests.Fpu;

/// <summary>x87 arithmetic, stack/tag behaviour, control words, environments and special-value conversions.</summary>
public class X87Tests
{
    private const ushort FcwPc53 = 0x027F; // all masked, double precision, nearest

    private static SimdOutcome Run(FpuState s, FakeSimdAccess a, Action<Assembler> emit)
    {
        var ins = Asm.One(emit);
        Assert.True(SimdExecutor.Handles(ins.Code), ins.ToString());
        return SimdExecutor.Execute(in ins, s, a);
    }

    private static void Ok(FpuState s, FakeSimdAccess a, Action<Assembler> emit) =>
        Assert.Equal(SimdOutcome.Ok, Run(s, a, emit));

    private static (FpuState, FakeSimdAccess) New()
    {
        var s = new FpuState();
        s.Reset();
        var a = new FakeSimdAccess();
        a.Gprs[Register.RBX] = 0x800;
        return (s, a);
    }

    private static double BinaryOp(string op, double x, double y, ushort fcw)
    {
        var (s, a) = New();
        s.Fcw = fcw;
        a.WriteBytes(0x800, BitConverter.GetBytes(x));
        a.WriteBytes(0x808, BitConverter.GetBytes(y));
        Ok(s, a, asm => asm.fld(__qword_ptr[rbx]));
        switch (op)
        {
            case "add":
                Ok(s, a, asm => asm.fadd(__qword_ptr[rbx + 8]));
                break;
            case "sub":
                Ok(s, a, asm => asm.fsub(__qword_ptr[rbx + 8]));
                break;
            case "subr":
                Ok(s, a, asm => asm.fsubr(__qword_ptr[rbx + 8]));
                break;
            case "mul":
                Ok(s, a, asm => asm.fmul(__qword_ptr[rbx + 8]));
                break;
            case "div":
                Ok(s, a, asm => asm.fdiv(__qword_ptr[rbx + 8]));
                break;
            case "divrp":
                Ok(s, a, asm => asm.fld(__qword_ptr[rbx + 8]));
                Ok(s, a, asm => asm.fdivrp(st1, st0));
                break;
            default:
                Ok(s, a, asm => asm.fsqrt());
                break;
        }

        Ok(s, a, asm => asm.fstp(__qword_ptr[rbx + 16]));
        Assert.Equal(0, s.AbridgedTag); // stack empty again
        return BitConverter.ToDouble(a.Memory, 0x810);
    }

    [Theory]
    [InlineData("add")]
    [InlineData("sub")]
    [InlineData("subr")]
    [InlineData("mul")]
    [InlineData("div")]
    [InlineData("divrp")]
    [InlineData("sqrt")]
    public void Arithmetic_DoublePrecisionControl_MatchesIeeeDouble(string op)
    {
        var rng = new Random(op.Length * 31);
        for (var n = 0; n < 300; n++)
        {
            var x = (rng.NextDouble() - 0.3) * Math.Pow(2, rng.Next(-60, 60));
            var y = (rng.NextDouble() - 0.6) * Math.Pow(2, rng.Next(-60, 60));
            var expected = op switch
            {
                "add" => x + y,
                "sub" => x - y,
                "subr" => y - x,
                "mul" => x * y,
                "div" => x / y,
                "divrp" => y / x, // FDIVRP ST(1), ST(0): ST(1) = ST(0) / ST(1), with y pushed last
                _ => Math.Sqrt(Math.Abs(x)),
            };
            if (op == "sqrt")
            {
                x = Math.Abs(x);
            }

            Assert.Equal(expected, BinaryOp(op, x, y, FcwPc53));
        }
    }

    [Fact]
    public void Fdiv_ExtendedPrecision_OneThirdHasSdmBitPattern()
    {
        var (s, a) = New();
        Ok(s, a, asm => asm.fld1());
        a.WriteBytes(0x800, BitConverter.GetBytes(3.0));
        Ok(s, a, asm => asm.fdiv(__qword_ptr[rbx]));
        Assert.Equal(new Float80(0xAAAA_AAAA_AAAA_AAAB, 0x3FFD), s.St(0));
        Assert.Equal(FpuState.FswPe | FpuState.FswC1, s.Fsw & 0x3FF); // rounded up: C1 = 1
        s.Fcw = 0x0F7F; // round toward zero
        Ok(s, a, asm => asm.fld1());
        Ok(s, a, asm => asm.fdiv(__qword_ptr[rbx]));
        Assert.Equal(new Float80(0xAAAA_AAAA_AAAA_AAAA, 0x3FFD), s.St(0));
        Assert.Equal(0, s.Fsw & FpuState.FswC1);
    }

    [Theory]
    [InlineData(0x037F, 0xC90F_DAA2_2168_C235UL)]
    [InlineData(0x0F7F, 0xC90F_DAA2_2168_C234UL)]
    [InlineData(0x077F, 0xC90F_DAA2_2168_C234UL)]
    [InlineData(0x0B7F, 0xC90F_DAA2_2168_C235UL)]
    public void Fldpi_RoundingControl_SelectsNeighbour(ushort fcw, ulong significand)
    {
        var (s, a) = New();
        s.Fcw = fcw;
        Ok(s, a, asm => asm.fldpi());
        Assert.Equal(new Float80(significand, 0x4000), s.St(0));
    }

    [Fact]
    public void Push_NinthValue_StackOverflowGivesIndefinite()
    {
        var (s, a) = New();
        for (var k = 0; k < 8; k++)
        {
            Ok(s, a, asm => asm.fld1());
        }

        Assert.Equal(0xFF, s.AbridgedTag);
        Ok(s, a, asm => asm.fldz());
        Assert.Equal(FpuState.FswIe | FpuState.FswSf | FpuState.FswC1, s.Fsw & (0x7F | FpuState.FswC1));
        Assert.Equal(Float80.Indefinite, s.St(0));
    }

    [Fact]
    public void Fadd_EmptyRegister_StackUnderflowC1Clear()
    {
        var (s, a) = New();
        Ok(s, a, asm => asm.fld1());
        Ok(s, a, asm => asm.fadd(st0, st3));
        Assert.Equal(FpuState.FswIe | FpuState.FswSf, s.Fsw & (0x7F | FpuState.FswC1));
        Assert.Equal(Float80.Indefinite, s.St(0));
    }

    [Fact]
    public void UnmaskedException_PendingUntilNextWaitingInstruction()
    {
        var (s, a) = New();
        s.Fcw = 0x037B; // zero-divide unmasked
        Ok(s, a, asm => asm.fld1());
        Ok(s, a, asm => asm.fldz());
        Ok(s, a, asm => asm.fdivp(st1, st0)); // 1/0: ZE unmasked, ES set; destination and stack unchanged (no pop)
        Assert.NotEqual(0, s.Fsw & FpuState.FswEs);
        Assert.Equal(Float80.Zero, s.St(0));
        Assert.Equal(Float80.One, s.St(1));
        Assert.Equal(SimdOutcome.FloatingPointError, Run(s, a, asm => asm.fld1()));
        Assert.Equal(SimdOutcome.FloatingPointError, Run(s, a, asm => asm.wait()));
        Ok(s, a, asm => asm.fnstsw(ax)); // non-waiting
        Assert.NotEqual(0UL, a.Gprs[Register.RAX] & FpuState.FswZe);
        Assert.Equal(SimdOutcome.FloatingPointError, Run(s, a, asm => asm.pxor(mm0, mm1))); // MMX waits too
        Ok(s, a, asm => asm.addps(xmm0, xmm1)); // SSE does not
        Ok(s, a, asm => asm.fnclex());
        Ok(s, a, asm => asm.wait());
    }

    [Fact]
    public void Gating_Cr0Bits_GiveNmUdAsSpecified()
    {
        var (s, a) = New();
        a.Cr0 |= 1 << 3; // TS
        Assert.Equal(SimdOutcome.DeviceNotAvailable, Run(s, a, asm => asm.fld1()));
        Assert.Equal(SimdOutcome.DeviceNotAvailable, Run(s, a, asm => asm.fnstcw(__word_ptr[rbx])));
        Assert.Equal(SimdOutcome.DeviceNotAvailable, Run(s, a, asm => asm.addps(xmm0, xmm1)));
        Assert.Equal(SimdOutcome.DeviceNotAvailable, Run(s, a, asm => asm.fxsave(__[rbx])));
        Assert.Equal(SimdOutcome.DeviceNotAvailable, Run(s, a, asm => asm.wait())); // TS and MP
        a.Cr0 &= ~(1UL << 1); // MP = 0: WAIT ignores TS
        Ok(s, a, asm => asm.wait());
        a.Cr0 = (a.Cr0 & ~(1UL << 3)) | (1 << 2); // EM
        Assert.Equal(SimdOutcome.DeviceNotAvailable, Run(s, a, asm => asm.fld1()));
        Assert.Equal(SimdOutcome.InvalidOpcode, Run(s, a, asm => asm.addps(xmm0, xmm1)));
        Assert.Equal(SimdOutcome.InvalidOpcode, Run(s, a, asm => asm.paddb(mm0, mm1)));
        a.Cr0 &= ~(1UL << 2);
        a.Cr4 &= ~Ringvisor.Core.Cpu.SystemRegisters.Cr4Osfxsr;
        Assert.Equal(SimdOutcome.InvalidOpcode, Run(s, a, asm => asm.paddb(xmm0, xmm1)));
        Ok(s, a, asm => asm.paddb(mm0, mm1)); // MMX does not depend on OSFXSR
    }

    [Theory]
    [InlineData(1.0, 2.0, 0x1UL, FpuState.FswC0)]
    [InlineData(2.0, 1.0, 0x0UL, 0)]
    [InlineData(2.0, 2.0, 0x40UL, FpuState.FswC3)]
    [InlineData(double.NaN, 2.0, 0x45UL, FpuState.FswC3 | FpuState.FswC2 | FpuState.FswC0)]
    public void Compare_Orders_SetEflagsAndConditionCodes(double top, double next, ulong eflags, int codes)
    {
        var (s, a) = New();
        a.WriteBytes(0x800, BitConverter.GetBytes(next));
        a.WriteBytes(0x808, BitConverter.GetBytes(top));
        Ok(s, a, asm => asm.fld(__qword_ptr[rbx]));
        Ok(s, a, asm => asm.fld(__qword_ptr[rbx + 8]));
        a.Rflags = 0x2 | 0x890;
        Ok(s, a, asm => asm.fucomi(st0, st1));
        Assert.Equal(0x2 | eflags, a.Rflags); // OF, SF, AF cleared (checked on the host)
        Assert.Equal(0, s.Fsw & FpuState.FswIe); // FUCOMI: QNaN is not invalid
        Ok(s, a, asm => asm.fcom(st0, st1));
        Assert.Equal(codes, s.Fsw & (FpuState.FswC3 | FpuState.FswC2 | FpuState.FswC1 | FpuState.FswC0));
        Assert.Equal(double.IsNaN(top), (s.Fsw & FpuState.FswIe) != 0); // FCOM: QNaN is invalid
        Ok(s, a, asm => asm.fcompp());
        Assert.Equal(0, s.AbridgedTag);
    }

    public static TheoryData<ulong, ushort, ushort> FxamCases => new()
    {
        { 0x8000_0000_0000_0000, 0x3FFF, FpuState.FswC2 }, // normal
        { 0, 0, FpuState.FswC3 }, // zero
        { 0x0000_0000_0000_0001, 0, FpuState.FswC3 | FpuState.FswC2 }, // denormal
        { 0x8000_0000_0000_0001, 0, FpuState.FswC3 | FpuState.FswC2 }, // pseudo-denormal
        { 0x8000_0000_0000_0000, 0x7FFF, FpuState.FswC2 | FpuState.FswC0 }, // infinity
        { 0xC000_0000_0000_0000, 0xFFFF, FpuState.FswC0 | FpuState.FswC1 }, // negative QNaN: C1 = sign
        { 0x4000_0000_0000_0000, 0x3FFF, 0 }, // unnormal: unsupported
    };

    [Theory]
    [MemberData(nameof(FxamCases))]
    public void Fxam_SpecialEncodings_Classify(ulong significand, ushort signExponent, ushort codes)
    {
        var (s, a) = New();
        a.WriteBytes(0x800, BitConverter.GetBytes(significand));
        a.WriteBytes(0x808, BitConverter.GetBytes(signExponent));
        Ok(s, a, asm => asm.fld(__tword_ptr[rbx]));
        Ok(s, a, asm => asm.fxam());
        Assert.Equal(codes, s.Fsw & (FpuState.FswC3 | FpuState.FswC2 | FpuState.FswC1 | FpuState.FswC0));
        Assert.Equal(0, s.Fsw & 0x3F); // FLD m80 raises nothing, whatever the encoding
    }

    [Fact]
    public void Fxam_EmptyRegister_ReportsEmpty()
    {
        var (s, a) = New();
        Ok(s, a, asm => asm.fxam());
        Assert.Equal(FpuState.FswC3 | FpuState.FswC0, s.Fsw & (FpuState.FswC3 | FpuState.FswC2 | FpuState.FswC0));
    }

    public static TheoryData<ulong, ushort, ulong, ushort> ToDoubleCases => new()
    {
        // Pseudo-denormal 2^-16382 is far below double range: masked underflow to +0 with UE/PE, DE on load.
        { 0x8000_0000_0000_0000, 0x0000, 0UL, (ushort)(FpuState.FswUe | FpuState.FswPe | FpuState.FswDe) },
        // 1.5 exactly.
        { 0xC000_0000_0000_0000, 0x3FFF, BitConverter.DoubleToUInt64Bits(1.5), 0 },
        // -infinity.
        { 0x8000_0000_0000_0000, 0xFFFF, BitConverter.DoubleToUInt64Bits(double.NegativeInfinity), 0 },
        // QNaN payload: top fraction bits survive.
        { 0xC123_4567_89AB_CDEF, 0x7FFF, 0x7FF8_2468_ACF1_3579UL, 0 },
        // SNaN: quieted, invalid.
        { 0x8000_0000_0000_0800, 0x7FFF, 0x7FF8_0000_0000_0001UL, FpuState.FswIe },
        // Largest extended: masked overflow to +inf.
        { 0xFFFF_FFFF_FFFF_FFFF, 0x7FFE, BitConverter.DoubleToUInt64Bits(double.PositiveInfinity),
            (ushort)(FpuState.FswOe | FpuState.FswPe) },
        // Smallest double denormal exactly.
        { 0x8000_0000_0000_0000, 0x3BCD, 1UL, 0 },
    };

    [Theory]
    [MemberData(nameof(ToDoubleCases))]
    public void Fstp_M64_ConvertsSpecialExtendedValues(ulong significand, ushort signExponent, ulong expected,
        ushort flags)
    {
        var (s, a) = New();
        a.WriteBytes(0x800, BitConverter.GetBytes(significand));
        a.WriteBytes(0x808, BitConverter.GetBytes(signExponent));
        Ok(s, a, asm => asm.fld(__tword_ptr[rbx]));
        if ((flags & FpuState.FswDe) != 0)
        {
            Ok(s, a, asm => asm.fld1());
            Ok(s, a, asm => asm.fmulp(st1, st0)); // reports DE for the pseudo-denormal operand
        }

        Ok(s, a, asm => asm.fstp(__qword_ptr[rbx + 16]));
        Assert.Equal(expected, BitConverter.ToUInt64(a.Memory, 0x810));
        Assert.Equal(flags, s.Fsw & 0x3F);
    }

    [Fact]
    public void Fld_M64SignalingNaNAndDenormal_ConvertExactlyWithFlags()
    {
        var (s, a) = New();
        a.WriteBytes(0x800, BitConverter.GetBytes(0x7FF0_0000_0000_0001UL));
        Ok(s, a, asm => asm.fld(__qword_ptr[rbx]));
        Assert.Equal(new Float80(0xC000_0000_0000_0800, 0x7FFF), s.St(0));
        Assert.Equal(FpuState.FswIe, s.Fsw & 0x3F);
        a.WriteBytes(0x800, BitConverter.GetBytes(1UL)); // 2^-1074
        Ok(s, a, asm => asm.fld(__qword_ptr[rbx]));
        Assert.Equal(new Float80(0x8000_0000_0000_0000, 16383 - 1074), s.St(0));
        Assert.Equal(FpuState.FswIe | FpuState.FswDe, s.Fsw & 0x3F);
    }

    [Theory]
    [InlineData(0x037F, 2.5, 2L)]
    [InlineData(0x037F, -3.5, -4L)]
    [InlineData(0x077F, 2.5, 2L)]
    [InlineData(0x0B7F, 2.1, 3L)]
    [InlineData(0x0F7F, -2.9, -2L)]
    public void Fistp_RoundingControl(ushort fcw, double value, long expected)
    {
        var (s, a) = New();
        s.Fcw = fcw;
        a.WriteBytes(0x800, BitConverter.GetBytes(value));
        Ok(s, a, asm => asm.fld(__qword_ptr[rbx]));
        Ok(s, a, asm => asm.fistp(__qword_ptr[rbx + 8]));
        Assert.Equal(expected, BitConverter.ToInt64(a.Memory, 0x808));
        Ok(s, a, asm => asm.fld(__qword_ptr[rbx]));
        Ok(s, a, asm => asm.fisttp(__dword_ptr[rbx + 8]));
        Assert.Equal((int)Math.Truncate(value), BitConverter.ToInt32(a.Memory, 0x808));
    }

    [Fact]
    public void Fistp_M16_OutOfRange_IntegerIndefinite()
    {
        var (s, a) = New();
        a.WriteBytes(0x800, BitConverter.GetBytes(40000.0));
        Ok(s, a, asm => asm.fld(__qword_ptr[rbx]));
        Ok(s, a, asm => asm.fistp(__word_ptr[rbx + 8]));
        Assert.Equal(0x8000, BitConverter.ToUInt16(a.Memory, 0x808));
        Assert.Equal(FpuState.FswIe, s.Fsw & 0x3F);
    }

    [Fact]
    public void Fild_Fistp_Int64Extremes_RoundTrip()
    {
        var (s, a) = New();
        foreach (var v in new[] { long.MinValue, long.MaxValue, -1L, 0L, 123456789012345L })
        {
            a.WriteBytes(0x800, BitConverter.GetBytes(v));
            Ok(s, a, asm => asm.fild(__qword_ptr[rbx]));
            Ok(s, a, asm => asm.fistp(__qword_ptr[rbx + 8]));
            Assert.Equal(v, BitConverter.ToInt64(a.Memory, 0x808));
        }

        Assert.Equal(0, s.Fsw & 0x3F);
    }

    [Fact]
    public void Fbld_Fbstp_RoundTripAndIndefinite()
    {
        var (s, a) = New();
        byte[] bcd = [0x89, 0x67, 0x45, 0x23, 0x01, 0x00, 0x00, 0x00, 0x00, 0x80]; // -123456789
        a.WriteBytes(0x800, bcd);
        Ok(s, a, asm => asm.fbld(__tword_ptr[rbx]));
        Ok(s, a, asm => asm.fist(__dword_ptr[rbx + 0x20]));
        Assert.Equal(-123456789, BitConverter.ToInt32(a.Memory, 0x820));
        Ok(s, a, asm => asm.fbstp(__tword_ptr[rbx + 0x10]));
        Assert.Equal(bcd, a.Memory.AsSpan(0x810, 10).ToArray());
        a.WriteBytes(0x800, BitConverter.GetBytes(1e19));
        Ok(s, a, asm => asm.fld(__qword_ptr[rbx]));
        Ok(s, a, asm => asm.fbstp(__tword_ptr[rbx + 0x10]));
        Assert.Equal(new byte[] { 0, 0, 0, 0, 0, 0, 0, 0xC0, 0xFF, 0xFF }, a.Memory.AsSpan(0x810, 10).ToArray());
    }

    [Fact]
    public void Fnstenv_ProtectedMode32_MatchesHostLayout()
    {
        // Host capture (FNINIT; FLD1; FNSTENV in 64-bit mode): FCW 037F, FSW 3800, FTW 3FFF with FFFF upper
        // halves, FIP, FCS | FOP 01E8 << 16, FDP 0, FDS 0 | FFFF0000.
        var (s, a) = New();
        Ok(s, a, asm => asm.fld1());
        Ok(s, a, asm => asm.fnstenv(__[rbx]));
        var env = a.Memory.AsSpan(0x800, 28);
        Assert.Equal(0xFFFF_037Fu, BinaryPrimitives.ReadUInt32LittleEndian(env));
        Assert.Equal(0xFFFF_3800u, BinaryPrimitives.ReadUInt32LittleEndian(env[4..]));
        Assert.Equal(0xFFFF_3FFFu, BinaryPrimitives.ReadUInt32LittleEndian(env[8..]));
        Assert.Equal(0x1000u, BinaryPrimitives.ReadUInt32LittleEndian(env[12..]));
        Assert.Equal(0x01E8_0033u, BinaryPrimitives.ReadUInt32LittleEndian(env[16..]));
        Assert.Equal(0xFFFF_0000u, BinaryPrimitives.ReadUInt32LittleEndian(env[24..]));
        Assert.Equal(0x037F, s.Fcw); // already all masked
    }

    [Fact]
    public void Fsave_Frstor_RoundTripAndReinitialize()
    {
        var (s, a) = New();
        Ok(s, a, asm => asm.fldpi());
        Ok(s, a, asm => asm.fld1());
        s.Fcw = 0x0A7F;
        var before = (s.Fsw, s.AbridgedTag, St0: s.St(0), St1: s.St(1));
        Ok(s, a, asm => asm.fnsave(__[rbx]));
        Assert.Equal(FpuState.FcwDefault, s.Fcw);
        Assert.Equal(0, s.AbridgedTag);
        Ok(s, a, asm => asm.frstor(__[rbx]));
        Assert.Equal(0x0A7F, s.Fcw);
        Assert.Equal(before, (s.Fsw, s.AbridgedTag, s.St(0), s.St(1)));
    }

    [Fact]
    public void Fldcw_ReservedBits_ReadBackLikeHardware()
    {
        var (s, a) = New();
        a.WriteBytes(0x800, [0, 0]);
        Ok(s, a, asm => asm.fldcw(__word_ptr[rbx]));
        Ok(s, a, asm => asm.fnstcw(__word_ptr[rbx + 2]));
        Assert.Equal(0x0040, BitConverter.ToUInt16(a.Memory, 0x802));
        a.WriteBytes(0x800, [0xFF, 0xFF]);
        Ok(s, a, asm => asm.fldcw(__word_ptr[rbx]));
        Assert.Equal(0x1F7F, s.Fcw);
    }

    [Fact]
    public void Fcmov_And_Fxch_MoveRegisters()
    {
        var (s, a) = New();
        Ok(s, a, asm => asm.fld1());
        Ok(s, a, asm => asm.fldz());
        a.Rflags = 0x2 | 0x1; // CF
        Ok(s, a, asm => asm.fcmovnb(st0, st1));
        Assert.True(s.St(0).IsZero);
        Ok(s, a, asm => asm.fcmovb(st0, st1));
        Assert.Equal(Float80.One, s.St(0));
        Ok(s, a, asm => asm.fldz());
        Ok(s, a, asm => asm.fxch(st0, st2));
        Assert.Equal(Float80.One, s.St(0));
        Assert.True(s.St(2).IsZero);
    }

    [Fact]
    public void Fprem_And_Fprem1_RemainderAndQuotientBits()
    {
        var (s, a) = New();
        a.WriteBytes(0x800, BitConverter.GetBytes(3.0));
        a.WriteBytes(0x808, BitConverter.GetBytes(17.0));
        Ok(s, a, asm => asm.fld(__qword_ptr[rbx]));
        Ok(s, a, asm => asm.fld(__qword_ptr[rbx + 8]));
        Ok(s, a, asm => asm.fprem());
        Assert.Equal(FpuState.FswC0 | FpuState.FswC1, // q = 101b: C0 = Q2, C3 = Q1, C1 = Q0
            s.Fsw & (FpuState.FswC0 | FpuState.FswC1 | FpuState.FswC2 | FpuState.FswC3));
        Ok(s, a, asm => asm.fst(__qword_ptr[rbx + 16]));
        Assert.Equal(2.0, BitConverter.ToDouble(a.Memory, 0x810)); // 17 = 5*3 + 2
        Ok(s, a, asm => asm.fstp(st0));
        Ok(s, a, asm => asm.fld(__qword_ptr[rbx + 8]));
        Ok(s, a, asm => asm.fprem1());
        Ok(s, a, asm => asm.fst(__qword_ptr[rbx + 16]));
        Assert.Equal(-1.0, BitConverter.ToDouble(a.Memory, 0x810)); // 17 = 6*3 - 1
    }

    [Fact]
    public void Transcendentals_ViaDouble_AreCloseAndSetPrecision()
    {
        var (s, a) = New();
        s.Fcw = FcwPc53;
        Ok(s, a, asm => asm.fldpi());
        a.WriteBytes(0x800, BitConverter.GetBytes(6.0));
        Ok(s, a, asm => asm.fdiv(__qword_ptr[rbx]));
        Ok(s, a, asm => asm.fsin());
        Ok(s, a, asm => asm.fstp(__qword_ptr[rbx + 8]));
        Assert.Equal(0.5, BitConverter.ToDouble(a.Memory, 0x808), 15);
        Assert.NotEqual(0, s.Fsw & FpuState.FswPe);
        Ok(s, a, asm => asm.fld1());
        Ok(s, a, asm => asm.fld1());
        Ok(s, a, asm => asm.fpatan());
        Ok(s, a, asm => asm.fstp(__qword_ptr[rbx + 8]));
        Assert.Equal(Math.PI / 4, BitConverter.ToDouble(a.Memory, 0x808), 15);
        Assert.Equal(0, s.AbridgedTag);
    }

    [Fact]
    public void Mmx_AliasesX87Registers_AndEmmsEmptiesTags()
    {
        var (s, a) = New();
        a.Gprs[Register.RAX] = 0x0123_4567_89AB_CDEF;
        Ok(s, a, asm => asm.fld1()); // TOP = 7
        Ok(s, a, asm => asm.movq(mm3, rax));
        Assert.Equal(0, s.Top);
        Assert.Equal(0xFF, s.AbridgedTag);
        Assert.Equal(new Float80(0x0123_4567_89AB_CDEF, 0xFFFF), s.Registers[3]);
        Ok(s, a, asm => asm.emms());
        Assert.Equal(0, s.AbridgedTag);
        Ok(s, a, asm => asm.fld(st3)); // empty after EMMS: underflow
        Assert.NotEqual(0, s.Fsw & FpuState.FswSf);
    }

    [Fact]
    public void Fistp_InexactRoundedUp_SetsC1()
    {
        var (s, a) = New();
        a.WriteBytes(0x800, BitConverter.GetBytes(2.75));
        Ok(s, a, asm => asm.fld(__qword_ptr[rbx]));
        Ok(s, a, asm => asm.fistp(__dword_ptr[rbx + 8]));
        Assert.Equal(3, BitConverter.ToInt32(a.Memory, 0x808));
        Assert.Equal(FpuState.FswPe | FpuState.FswC1, s.Fsw & (0x3F | FpuState.FswC1));
    }

    [Fact]
    public void Fscale_HugeScale_OverflowsWithoutInvalid()
    {
        var (s, a) = New();
        a.WriteBytes(0x800, BitConverter.GetBytes(1e300));
        Ok(s, a, asm => asm.fld(__qword_ptr[rbx])); // ST1 = 1e300: a scale far beyond the exponent range
        Ok(s, a, asm => asm.fld1());
        Ok(s, a, asm => asm.fscale());
        Assert.True(s.St(0).IsInfinity);
        Assert.Equal(FpuState.FswOe | FpuState.FswPe, s.Fsw & 0x3F);
    }

    [Fact]
    public void Fmul_UnmaskedOverflow_StoresRebiasedExponentAndSetsEs()
    {
        // SDM Vol. 1 8.5.4: with OE unmasked the exponent is divided by 2^24576 and stored; ES becomes pending.
        var (s, a) = New();
        s.Fcw = 0x0377; // OE unmasked
        a.WriteBytes(0x800, BitConverter.GetBytes(0x8000_0000_0000_0000UL));
        a.WriteBytes(0x808, BitConverter.GetBytes((ushort)(0x3FFF + 10000)));
        Ok(s, a, asm => asm.fld(__tword_ptr[rbx]));
        Ok(s, a, asm => asm.fmul(st0, st0)); // 2^20000 overflows (max 2^16383)
        Assert.Equal(new Float80(0x8000_0000_0000_0000, (ushort)(0x3FFF + 20000 - 24576)), s.St(0));
        Assert.Equal(FpuState.FswOe, s.Fsw & 0x3F);
        Assert.NotEqual(0, s.Fsw & FpuState.FswEs);
    }

    [Fact]
    public void Fnstenv_RealMode16_PacksLinearPointersWithOpcode()
    {
        // SDM Vol. 1 Figure 8-11: 16-bit real-address layout, FIP bits 19:16 above FOP.
        var (s, a) = New();
        a.Cr0 &= ~1UL; // real mode
        s.Fip = 0x1_2345;
        s.Fop = 0x1E8;
        s.Fdp = 0x6_789A;
        s.Fsw = 0x3800;
        var ins = Asm.One(asm => asm.fnstenv(__[bx]), 16);
        a.Gprs[Register.RBX] = 0x800;
        Assert.Equal(SimdOutcome.Ok, SimdExecutor.Execute(in ins, s, a));
        var env = a.Memory.AsSpan(0x800, 14);
        Assert.Equal(0x037F, BinaryPrimitives.ReadUInt16LittleEndian(env));
        Assert.Equal(0x3800, BinaryPrimitives.ReadUInt16LittleEndian(env[2..]));
        Assert.Equal(0xFFFF, BinaryPrimitives.ReadUInt16LittleEndian(env[4..]));
        Assert.Equal(0x2345, BinaryPrimitives.ReadUInt16LittleEndian(env[6..]));
        Assert.Equal(0x11E8, BinaryPrimitives.ReadUInt16LittleEndian(env[8..]));
        Assert.Equal(0x789A, BinaryPrimitives.ReadUInt16LittleEndian(env[10..]));
        Assert.Equal(0x6000, BinaryPrimitives.ReadUInt16LittleEndian(env[12..]));
        var back = new FpuState();
        var load = Asm.One(asm => asm.fldenv(__[bx]), 16);
        Assert.Equal(SimdOutcome.Ok, SimdExecutor.Execute(in load, back, a));
        Assert.Equal(0x1_2345UL, back.Fip);
        Assert.Equal(0x6_789AUL, back.Fdp);
        Assert.Equal(0x1E8, back.Fop);
    }

    [Fact]
    public void Fstp_FaultingStore_LeavesStackAndStatusUnchanged()
    {
        var (s, a) = New();
        Ok(s, a, asm => asm.fldpi());
        var before = (s.Fsw, s.AbridgedTag, s.St(0), s.Fip);
        a.FaultAbove = 0x800;
        Assert.Equal(SimdOutcome.MemoryFaulted, Run(s, a, asm => asm.fstp(__dword_ptr[rbx])));
        Assert.Equal(before, (s.Fsw, s.AbridgedTag, s.St(0), s.Fip));
        a.FaultAbove = 0x10000;
        Ok(s, a, asm => asm.fstp(__dword_ptr[rbx]));
        Assert.Equal(FpuState.FswPe | FpuState.FswC1, s.Fsw & (0x3F | FpuState.FswC1)); // pi rounds up in single
        Assert.Equal(BitConverter.SingleToUInt32Bits(MathF.PI), BitConverter.ToUInt32(a.Memory, 0x800));
    }

    [Fact]
    public void Fadd_UnmaskedDenormal_RecordsOnlyDenormalAndKeepsOperands()
    {
        var (s, a) = New();
        s.Fcw = 0x037D; // DM clear
        a.WriteBytes(0x800, BitConverter.GetBytes(1UL)); // 80-bit denormal
        a.WriteBytes(0x808, BitConverter.GetBytes((ushort)0));
        Ok(s, a, asm => asm.fld(__tword_ptr[rbx]));
        Ok(s, a, asm => asm.fldpi());
        Ok(s, a, asm => asm.fadd(st0, st1));
        Assert.Equal(new Float80(0xC90F_DAA2_2168_C235, 0x4000), s.St(0)); // not written
        Assert.Equal(FpuState.FswDe | FpuState.FswEs | FpuState.FswB,
            s.Fsw & (0x3F | FpuState.FswEs | FpuState.FswB | FpuState.FswC1));
    }

    [Fact]
    public void Fscale_UnmaskedOverflowBeyondRebias_GivesInfinity()
    {
        var (s, a) = New();
        s.Fcw = 0x0377; // OM clear
        a.WriteBytes(0x800, BitConverter.GetBytes(1e11));
        Ok(s, a, asm => asm.fld(__qword_ptr[rbx])); // scale 2^(1e11)
        Ok(s, a, asm => asm.fld1());
        Ok(s, a, asm => asm.fscale());
        Assert.True(s.St(0).IsInfinity);
        Assert.Equal(FpuState.FswOe | FpuState.FswPe | FpuState.FswC1, s.Fsw & (0x3F | FpuState.FswC1));
    }

    [Fact]
    public void FldM64_UnmaskedDenormal_LoadsAnywayButUnmaskedSnanDoesNot()
    {
        var (s, a) = New();
        s.Fcw = 0x037C; // IM and DM clear
        a.WriteBytes(0x800, BitConverter.GetBytes(1UL)); // double denormal 2^-1074
        Ok(s, a, asm => asm.fld(__qword_ptr[rbx]));
        Assert.Equal(0x80, s.AbridgedTag);
        Assert.Equal(new Float80(0x8000_0000_0000_0000, 16383 - 1074), s.St(0));
        Assert.Equal(FpuState.FswDe, s.Fsw & 0x3F);
        Assert.Equal(SimdOutcome.FloatingPointError, Run(s, a, asm => asm.fld1())); // DE is now pending
        Ok(s, a, asm => asm.fnclex());
        a.WriteBytes(0x800, BitConverter.GetBytes(0x7FF0_0000_0000_0001UL)); // SNaN
        Ok(s, a, asm => asm.fld(__qword_ptr[rbx]));
        Assert.Equal(0x80, s.AbridgedTag); // not pushed
        Assert.Equal(FpuState.FswIe, s.Fsw & 0x3F);
    }

    [Fact]
    public void FldM32_FullStack_OverflowHidesDenormal()
    {
        var (s, a) = New();
        for (var k = 0; k < 8; k++)
        {
            Ok(s, a, asm => asm.fld1());
        }

        a.WriteBytes(0x800, BitConverter.GetBytes(1u)); // single denormal
        Ok(s, a, asm => asm.fld(__dword_ptr[rbx]));
        Assert.Equal(FpuState.FswIe | FpuState.FswSf | FpuState.FswC1, s.Fsw & (0x7F | FpuState.FswC1));
        Assert.Equal(Float80.Indefinite, s.St(0));
    }
}
