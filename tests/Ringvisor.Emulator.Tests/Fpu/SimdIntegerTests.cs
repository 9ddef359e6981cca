using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using Iced.Intel;
using Ringvisor.Emulator.Fpu;
using static Iced.Intel.AssemblerRegisters;

namespace Ringvisor.Emulator.Tests.Fpu;

/// <summary>Integer SIMD against the host CPU's own instructions (System.Runtime.Intrinsics.X86) as the oracle.</summary>
public class SimdIntegerTests
{
    private delegate Vector128<byte> Oracle(Vector128<byte> x, Vector128<byte> y);

    private static readonly Dictionary<string, (Action<Assembler> Emit, Oracle Oracle)> s_cases = new()
    {
        ["paddb"] = (a => a.paddb(xmm0, xmm1), (x, y) => Sse2.Add(x, y)),
        ["paddw"] = (a => a.paddw(xmm0, xmm1), (x, y) => Sse2.Add(x.AsInt16(), y.AsInt16()).AsByte()),
        ["paddd"] = (a => a.paddd(xmm0, xmm1), (x, y) => Sse2.Add(x.AsInt32(), y.AsInt32()).AsByte()),
        ["paddq"] = (a => a.paddq(xmm0, xmm1), (x, y) => Sse2.Add(x.AsInt64(), y.AsInt64()).AsByte()),
        ["paddsb"] = (a => a.paddsb(xmm0, xmm1), (x, y) => Sse2.AddSaturate(x.AsSByte(), y.AsSByte()).AsByte()),
        ["paddsw"] = (a => a.paddsw(xmm0, xmm1), (x, y) => Sse2.AddSaturate(x.AsInt16(), y.AsInt16()).AsByte()),
        ["paddusb"] = (a => a.paddusb(xmm0, xmm1), (x, y) => Sse2.AddSaturate(x, y)),
        ["paddusw"] = (a => a.paddusw(xmm0, xmm1), (x, y) => Sse2.AddSaturate(x.AsUInt16(), y.AsUInt16()).AsByte()),
        ["psubb"] = (a => a.psubb(xmm0, xmm1), (x, y) => Sse2.Subtract(x, y)),
        ["psubw"] = (a => a.psubw(xmm0, xmm1), (x, y) => Sse2.Subtract(x.AsInt16(), y.AsInt16()).AsByte()),
        ["psubd"] = (a => a.psubd(xmm0, xmm1), (x, y) => Sse2.Subtract(x.AsInt32(), y.AsInt32()).AsByte()),
        ["psubq"] = (a => a.psubq(xmm0, xmm1), (x, y) => Sse2.Subtract(x.AsInt64(), y.AsInt64()).AsByte()),
        ["psubsb"] = (a => a.psubsb(xmm0, xmm1), (x, y) => Sse2.SubtractSaturate(x.AsSByte(), y.AsSByte()).AsByte()),
        ["psubsw"] = (a => a.psubsw(xmm0, xmm1), (x, y) => Sse2.SubtractSaturate(x.AsInt16(), y.AsInt16()).AsByte()),
        ["psubusb"] = (a => a.psubusb(xmm0, xmm1), (x, y) => Sse2.SubtractSaturate(x, y)),
        ["psubusw"] = (a => a.psubusw(xmm0, xmm1),
            (x, y) => Sse2.SubtractSaturate(x.AsUInt16(), y.AsUInt16()).AsByte()),
        ["pcmpeqb"] = (a => a.pcmpeqb(xmm0, xmm1), (x, y) => Sse2.CompareEqual(x, y)),
        ["pcmpeqw"] = (a => a.pcmpeqw(xmm0, xmm1), (x, y) => Sse2.CompareEqual(x.AsInt16(), y.AsInt16()).AsByte()),
        ["pcmpeqd"] = (a => a.pcmpeqd(xmm0, xmm1), (x, y) => Sse2.CompareEqual(x.AsInt32(), y.AsInt32()).AsByte()),
        ["pcmpgtb"] = (a => a.pcmpgtb(xmm0, xmm1),
            (x, y) => Sse2.CompareGreaterThan(x.AsSByte(), y.AsSByte()).AsByte()),
        ["pcmpgtw"] = (a => a.pcmpgtw(xmm0, xmm1),
            (x, y) => Sse2.CompareGreaterThan(x.AsInt16(), y.AsInt16()).AsByte()),
        ["pcmpgtd"] = (a => a.pcmpgtd(xmm0, xmm1),
            (x, y) => Sse2.CompareGreaterThan(x.AsInt32(), y.AsInt32()).AsByte()),
        ["pand"] = (a => a.pand(xmm0, xmm1), (x, y) => Sse2.And(x, y)),
        ["pandn"] = (a => a.pandn(xmm0, xmm1), (x, y) => Sse2.AndNot(x, y)),
        ["por"] = (a => a.por(xmm0, xmm1), (x, y) => Sse2.Or(x, y)),
        ["pxor"] = (a => a.pxor(xmm0, xmm1), (x, y) => Sse2.Xor(x, y)),
        ["andnps"] = (a => a.andnps(xmm0, xmm1), (x, y) => Sse.AndNot(x.AsSingle(), y.AsSingle()).AsByte()),
        ["pmullw"] = (a => a.pmullw(xmm0, xmm1), (x, y) => Sse2.MultiplyLow(x.AsInt16(), y.AsInt16()).AsByte()),
        ["pmulhw"] = (a => a.pmulhw(xmm0, xmm1), (x, y) => Sse2.MultiplyHigh(x.AsInt16(), y.AsInt16()).AsByte()),
        ["pmulhuw"] = (a => a.pmulhuw(xmm0, xmm1),
            (x, y) => Sse2.MultiplyHigh(x.AsUInt16(), y.AsUInt16()).AsByte()),
        ["pmuludq"] = (a => a.pmuludq(xmm0, xmm1), (x, y) => Sse2.Multiply(x.AsUInt32(), y.AsUInt32()).AsByte()),
        ["pmaddwd"] = (a => a.pmaddwd(xmm0, xmm1), (x, y) => Sse2.MultiplyAddAdjacent(x.AsInt16(), y.AsInt16()).AsByte()),
        ["psadbw"] = (a => a.psadbw(xmm0, xmm1), (x, y) => Sse2.SumAbsoluteDifferences(x, y).AsByte()),
        ["pavgb"] = (a => a.pavgb(xmm0, xmm1), (x, y) => Sse2.Average(x, y)),
        ["pavgw"] = (a => a.pavgw(xmm0, xmm1), (x, y) => Sse2.Average(x.AsUInt16(), y.AsUInt16()).AsByte()),
        ["pminub"] = (a => a.pminub(xmm0, xmm1), (x, y) => Sse2.Min(x, y)),
        ["pmaxub"] = (a => a.pmaxub(xmm0, xmm1), (x, y) => Sse2.Max(x, y)),
        ["pminsw"] = (a => a.pminsw(xmm0, xmm1), (x, y) => Sse2.Min(x.AsInt16(), y.AsInt16()).AsByte()),
        ["pmaxsw"] = (a => a.pmaxsw(xmm0, xmm1), (x, y) => Sse2.Max(x.AsInt16(), y.AsInt16()).AsByte()),
        ["psllw"] = (a => a.psllw(xmm0, xmm1), (x, y) => Sse2.ShiftLeftLogical(x.AsInt16(), y.AsInt16()).AsByte()),
        ["psrld"] = (a => a.psrld(xmm0, xmm1), (x, y) => Sse2.ShiftRightLogical(x.AsInt32(), y.AsInt32()).AsByte()),
        ["psraw"] = (a => a.psraw(xmm0, xmm1),
            (x, y) => Sse2.ShiftRightArithmetic(x.AsInt16(), y.AsInt16()).AsByte()),
        ["psrad_imm"] = (a => a.psrad(xmm0, 7), (x, y) => Sse2.ShiftRightArithmetic(x.AsInt32(), 7).AsByte()),
        ["psllq_imm"] = (a => a.psllq(xmm0, 13), (x, y) => Sse2.ShiftLeftLogical(x.AsInt64(), 13).AsByte()),
        ["pslldq"] = (a => a.pslldq(xmm0, 5), (x, y) => Sse2.ShiftLeftLogical128BitLane(x, 5)),
        ["psrldq"] = (a => a.psrldq(xmm0, 11), (x, y) => Sse2.ShiftRightLogical128BitLane(x, 11)),
        ["punpcklbw"] = (a => a.punpcklbw(xmm0, xmm1), (x, y) => Sse2.UnpackLow(x, y)),
        ["punpckhwd"] = (a => a.punpckhwd(xmm0, xmm1), (x, y) => Sse2.UnpackHigh(x.AsInt16(), y.AsInt16()).AsByte()),
        ["punpckldq"] = (a => a.punpckldq(xmm0, xmm1), (x, y) => Sse2.UnpackLow(x.AsInt32(), y.AsInt32()).AsByte()),
        ["punpckhqdq"] = (a => a.punpckhqdq(xmm0, xmm1),
            (x, y) => Sse2.UnpackHigh(x.AsInt64(), y.AsInt64()).AsByte()),
        ["packsswb"] = (a => a.packsswb(xmm0, xmm1),
            (x, y) => Sse2.PackSignedSaturate(x.AsInt16(), y.AsInt16()).AsByte()),
        ["packuswb"] = (a => a.packuswb(xmm0, xmm1), (x, y) => Sse2.PackUnsignedSaturate(x.AsInt16(), y.AsInt16())),
        ["packssdw"] = (a => a.packssdw(xmm0, xmm1),
            (x, y) => Sse2.PackSignedSaturate(x.AsInt32(), y.AsInt32()).AsByte()),
        ["pshufd"] = (a => a.pshufd(xmm0, xmm1, 0x1B), (x, y) => Sse2.Shuffle(y.AsInt32(), 0x1B).AsByte()),
        ["pshufhw"] = (a => a.pshufhw(xmm0, xmm1, 0x93), (x, y) => Sse2.ShuffleHigh(y.AsInt16(), 0x93).AsByte()),
        ["pshuflw"] = (a => a.pshuflw(xmm0, xmm1, 0x4E), (x, y) => Sse2.ShuffleLow(y.AsInt16(), 0x4E).AsByte()),
        ["pshufb"] = (a => a.pshufb(xmm0, xmm1), (x, y) => Ssse3.Shuffle(x, y)),
        ["palignr"] = (a => a.palignr(xmm0, xmm1, 5), (x, y) => Ssse3.AlignRight(x, y, 5)),
        ["palignr_big"] = (a => a.palignr(xmm0, xmm1, 20), (x, y) => Ssse3.AlignRight(x, y, 20)),
        ["pabsb"] = (a => a.pabsb(xmm0, xmm1), (x, y) => Ssse3.Abs(y.AsSByte()).AsByte()),
        ["pabsd"] = (a => a.pabsd(xmm0, xmm1), (x, y) => Ssse3.Abs(y.AsInt32()).AsByte()),
        ["psignb"] = (a => a.psignb(xmm0, xmm1), (x, y) => Ssse3.Sign(x.AsSByte(), y.AsSByte()).AsByte()),
        ["psignw"] = (a => a.psignw(xmm0, xmm1), (x, y) => Ssse3.Sign(x.AsInt16(), y.AsInt16()).AsByte()),
        ["psignd"] = (a => a.psignd(xmm0, xmm1), (x, y) => Ssse3.Sign(x.AsInt32(), y.AsInt32()).AsByte()),
        ["phaddw"] = (a => a.phaddw(xmm0, xmm1), (x, y) => Ssse3.HorizontalAdd(x.AsInt16(), y.AsInt16()).AsByte()),
        ["phaddsw"] = (a => a.phaddsw(xmm0, xmm1),
            (x, y) => Ssse3.HorizontalAddSaturate(x.AsInt16(), y.AsInt16()).AsByte()),
        ["phsubd"] = (a => a.phsubd(xmm0, xmm1),
            (x, y) => Ssse3.HorizontalSubtract(x.AsInt32(), y.AsInt32()).AsByte()),
        ["phsubsw"] = (a => a.phsubsw(xmm0, xmm1),
            (x, y) => Ssse3.HorizontalSubtractSaturate(x.AsInt16(), y.AsInt16()).AsByte()),
        ["pmulhrsw"] = (a => a.pmulhrsw(xmm0, xmm1),
            (x, y) => Ssse3.MultiplyHighRoundScale(x.AsInt16(), y.AsInt16()).AsByte()),
        ["pmaddubsw"] = (a => a.pmaddubsw(xmm0, xmm1),
            (x, y) => Ssse3.MultiplyAddAdjacent(x, y.AsSByte()).AsByte()),
        ["shufps"] = (a => a.shufps(xmm0, xmm1, 0xB4),
            (x, y) => Sse.Shuffle(x.AsSingle(), y.AsSingle(), 0xB4).AsByte()),
        ["unpckhps"] = (a => a.unpckhps(xmm0, xmm1), (x, y) => Sse.UnpackHigh(x.AsSingle(), y.AsSingle()).AsByte()),
        ["movhlps"] = (a => a.movhlps(xmm0, xmm1), (x, y) => Sse.MoveHighToLow(x.AsSingle(), y.AsSingle()).AsByte()),
        ["movlhps"] = (a => a.movlhps(xmm0, xmm1), (x, y) => Sse.MoveLowToHigh(x.AsSingle(), y.AsSingle()).AsByte()),
        ["movshdup"] = (a => a.movshdup(xmm0, xmm1), (x, y) => Sse3.MoveHighAndDuplicate(y.AsSingle()).AsByte()),
        ["movddup"] = (a => a.movddup(xmm0, xmm1), (x, y) => Sse3.MoveAndDuplicate(y.AsDouble()).AsByte()),
    };

    public static TheoryData<string> Names => [.. s_cases.Keys];

    [Theory]
    [MemberData(nameof(Names))]
    public void Execute_XmmRegisterForm_MatchesHostCpu(string name)
    {
        if (!Ssse3.IsSupported || !Sse3.IsSupported)
        {
            return; // The oracle is the host's SSSE3; every x86-64 CI machine of this project has it.
        }

        var (emit, oracle) = s_cases[name];
        var instruction = Asm.One(emit);
        Assert.True(SimdExecutor.Handles(instruction.Code), name);
        var rng = new Random(name.GetHashCode(StringComparison.Ordinal) & 0xFFFF);
        for (var n = 0; n < 200; n++)
        {
            var x = RandomVector(rng, n);
            var y = RandomVector(rng, n + 1);
            if (name.StartsWith("ps", StringComparison.Ordinal) && !name.Contains("sign") && n % 2 == 0)
            {
                // Shift counts: keep them small often enough to exercise partial shifts.
                y = Vector128.CreateScalar((ulong)rng.Next(0, 40)).AsByte();
            }

            var state = new FpuState();
            state.Xmm[0] = x;
            state.Xmm[1] = y;
            var access = new FakeSimdAccess();
            Assert.Equal(SimdOutcome.Ok, SimdExecutor.Execute(in instruction, state, access));
            Assert.Equal(oracle(x, y), state.Xmm[0]);
        }
    }

    [Theory]
    [InlineData("paddusb")]
    [InlineData("pcmpeqb")]
    [InlineData("pshufb")]
    [InlineData("palignr")]
    [InlineData("punpcklbw")]
    [InlineData("packsswb")]
    [InlineData("phaddw")]
    [InlineData("psadbw")]
    public void Execute_MmxForm_MatchesLowHalfSemantics(string name)
    {
        var rng = new Random(7);
        var x = rng.NextInt64();
        var y = rng.NextInt64();
        var mmx = name switch
        {
            "paddusb" => Asm.One(a => a.paddusb(mm0, mm1)),
            "pcmpeqb" => Asm.One(a => a.pcmpeqb(mm0, mm1)),
            "pshufb" => Asm.One(a => a.pshufb(mm0, mm1)),
            "palignr" => Asm.One(a => a.palignr(mm0, mm1, 3)),
            "punpcklbw" => Asm.One(a => a.punpcklbw(mm0, mm1)),
            "packsswb" => Asm.One(a => a.packsswb(mm0, mm1)),
            "phaddw" => Asm.One(a => a.phaddw(mm0, mm1)),
            _ => Asm.One(a => a.psadbw(mm0, mm1)),
        };
        var state = new FpuState();
        state.SetMm(0, (ulong)x);
        state.SetMm(1, (ulong)y);
        Assert.Equal(SimdOutcome.Ok, SimdExecutor.Execute(in mmx, state, new FakeSimdAccess()));
        var expected = MmxReference(name, (ulong)x, (ulong)y);
        Assert.Equal(expected, state.GetMm(0));
        Assert.Equal(0, state.Top);
        Assert.Equal(0xFF, state.AbridgedTag);
        Assert.Equal(0xFFFF, state.Registers[0].SignExponent);
    }

    /// <summary>Random bytes, biased towards the saturation and sign boundaries and towards equal lanes.</summary>
    private static Vector128<byte> RandomVector(Random rng, int n)
    {
        Span<byte> b = stackalloc byte[16];
        rng.NextBytes(b);
        if (n % 3 == 0)
        {
            byte[] edges = [0x00, 0x01, 0x7F, 0x80, 0x81, 0xFF];
            for (var k = 0; k < 16; k++)
            {
                if (rng.Next(2) == 0)
                {
                    b[k] = edges[rng.Next(edges.Length)];
                }
            }
        }

        return Vector128.Create((ReadOnlySpan<byte>)b);
    }

    /// <summary>MMX results built from the SDM's element definitions, independently of the executor.</summary>
    private static ulong MmxReference(string name, ulong x, ulong y)
    {
        byte Bx(int k) => (byte)(x >> (8 * k));
        byte By(int k) => (byte)(y >> (8 * k));
        short Wx(int k) => (short)(x >> (16 * k));
        short Wy(int k) => (short)(y >> (16 * k));
        ulong r = 0;
        switch (name)
        {
            case "paddusb":
                for (var k = 0; k < 8; k++)
                {
                    r |= (ulong)Math.Min(255, Bx(k) + By(k)) << (8 * k);
                }

                return r;
            case "pcmpeqb":
                for (var k = 0; k < 8; k++)
                {
                    r |= (Bx(k) == By(k) ? 0xFFUL : 0) << (8 * k);
                }

                return r;
            case "pshufb":
                for (var k = 0; k < 8; k++)
                {
                    r |= ((By(k) & 0x80) != 0 ? 0UL : Bx(By(k) & 7)) << (8 * k);
                }

                return r;
            case "palignr":
                return (ulong)((((UInt128)x << 64) | y) >> 24);
            case "punpcklbw":
                for (var k = 0; k < 4; k++)
                {
                    r |= ((ulong)Bx(k) << (16 * k)) | ((ulong)By(k) << ((16 * k) + 8));
                }

                return r;
            case "packsswb":
                for (var k = 0; k < 4; k++)
                {
                    r |= (ulong)(byte)(sbyte)Math.Clamp((int)Wx(k), -128, 127) << (8 * k);
                    r |= (ulong)(byte)(sbyte)Math.Clamp((int)Wy(k), -128, 127) << (8 * (k + 4));
                }

                return r;
            case "phaddw":
                return (ushort)(Wx(0) + Wx(1)) | ((ulong)(ushort)(Wx(2) + Wx(3)) << 16)
                    | ((ulong)(ushort)(Wy(0) + Wy(1)) << 32) | ((ulong)(ushort)(Wy(2) + Wy(3)) << 48);
            default:
                var sum = 0;
                for (var k = 0; k < 8; k++)
                {
                    sum += Math.Abs(Bx(k) - By(k));
                }

                return (ulong)sum;
        }
    }

    [Fact]
    public void Execute_PmovmskbAfterPcmpeqb_GivesStrlenMask()
    {
        var state = new FpuState();
        var access = new FakeSimdAccess();
        access.WriteBytes(0x100, "hello, world\0xyz"u8);
        access.Gprs[Register.RSI] = 0x100;
        foreach (var ins in new[]
                 {
                     Asm.One(a => a.pxor(xmm1, xmm1)),
                     Asm.One(a => a.movdqa(xmm0, __xmmword_ptr[rsi])),
                     Asm.One(a => a.pcmpeqb(xmm0, xmm1)),
                     Asm.One(a => a.pmovmskb(eax, xmm0)),
                 })
        {
            Assert.Equal(SimdOutcome.Ok, SimdExecutor.Execute(in ins, state, access));
        }

        Assert.Equal(1UL << 12, access.Gprs[Register.RAX]);
    }

    [Fact]
    public void Execute_MovdqaMisaligned_GeneralProtection()
    {
        var state = new FpuState();
        var access = new FakeSimdAccess();
        access.Gprs[Register.RSI] = 0x108;
        var ins = Asm.One(a => a.movdqa(xmm0, __xmmword_ptr[rsi]));
        Assert.Equal(SimdOutcome.GeneralProtection, SimdExecutor.Execute(in ins, state, access));
        var paddMem = Asm.One(a => a.paddb(xmm0, __xmmword_ptr[rsi]));
        Assert.Equal(SimdOutcome.GeneralProtection, SimdExecutor.Execute(in paddMem, state, access));
    }

    [Fact]
    public void Execute_MovdquMisaligned_Loads()
    {
        var state = new FpuState();
        var access = new FakeSimdAccess();
        access.Gprs[Register.RSI] = 0x109;
        access.WriteBytes(0x109, [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16]);
        var ins = Asm.One(a => a.movdqu(xmm3, __xmmword_ptr[rsi]));
        Assert.Equal(SimdOutcome.Ok, SimdExecutor.Execute(in ins, state, access));
        Assert.Equal(Vector128.Create((byte)1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16), state.Xmm[3]);
    }

    [Fact]
    public void Execute_MemoryFault_ReportsMemoryFaultedAndLeavesRegister()
    {
        var state = new FpuState();
        state.Xmm[0] = Vector128.Create((byte)0xAA);
        var access = new FakeSimdAccess { FaultAbove = 0x1000 };
        access.Gprs[Register.RSI] = 0x1000;
        var ins = Asm.One(a => a.movdqu(xmm0, __xmmword_ptr[rsi]));
        Assert.Equal(SimdOutcome.MemoryFaulted, SimdExecutor.Execute(in ins, state, access));
        Assert.Equal(Vector128.Create((byte)0xAA), state.Xmm[0]);
    }

    [Fact]
    public void Execute_MovdAndMovq_ZeroExtendAndTruncate()
    {
        var state = new FpuState();
        state.Xmm[2] = Vector128.Create(ulong.MaxValue).AsByte();
        var access = new FakeSimdAccess();
        access.Gprs[Register.RAX] = 0x1122_3344_5566_7788;
        var movd = Asm.One(a => a.movd(xmm2, eax));
        Assert.Equal(SimdOutcome.Ok, SimdExecutor.Execute(in movd, state, access));
        Assert.Equal(Vector128.Create(0x5566_7788UL, 0), state.Xmm[2].AsUInt64());
        var movq = Asm.One(a => a.movq(xmm2, rax));
        Assert.Equal(SimdOutcome.Ok, SimdExecutor.Execute(in movq, state, access));
        Assert.Equal(Vector128.Create(0x1122_3344_5566_7788UL, 0), state.Xmm[2].AsUInt64());
        state.Xmm[4] = Vector128.Create(0xDEAD_BEEF_0BAD_F00DUL, 5).AsByte();
        var back = Asm.One(a => a.movd(ebx, xmm4));
        Assert.Equal(SimdOutcome.Ok, SimdExecutor.Execute(in back, state, access));
        Assert.Equal(0x0BAD_F00DUL, access.Gprs[Register.RBX]);
    }

    [Fact]
    public void Execute_MovssRegisterAndMemory_MergeVersusZeroExtend()
    {
        var state = new FpuState();
        var access = new FakeSimdAccess();
        state.Xmm[0] = Vector128.Create(1u, 2, 3, 4).AsByte();
        state.Xmm[1] = Vector128.Create(9u, 8, 7, 6).AsByte();
        var reg = Asm.One(a => a.movss(xmm0, xmm1));
        Assert.Equal(SimdOutcome.Ok, SimdExecutor.Execute(in reg, state, access));
        Assert.Equal(Vector128.Create(9u, 2, 3, 4), state.Xmm[0].AsUInt32());
        access.WriteBytes(0x200, BitConverter.GetBytes(0x4242_4242u));
        access.Gprs[Register.RDI] = 0x200;
        var mem = Asm.One(a => a.movss(xmm0, __dword_ptr[rdi]));
        Assert.Equal(SimdOutcome.Ok, SimdExecutor.Execute(in mem, state, access));
        Assert.Equal(Vector128.Create(0x4242_4242u, 0, 0, 0), state.Xmm[0].AsUInt32());
    }

    [Fact]
    public void Execute_Maskmovdqu_WritesOnlySelectedBytes()
    {
        var state = new FpuState();
        var access = new FakeSimdAccess();
        access.Gprs[Register.RDI] = 0x300;
        access.WriteBytes(0x300, Enumerable.Repeat((byte)0xEE, 16).ToArray());
        state.Xmm[1] = Vector128.Create((byte)0x11);
        state.Xmm[2] = Vector128.Create(0x80, 0, 0x80, 0x7F, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xFF).AsByte();
        var ins = Asm.Bytes(0x66, 0x0F, 0xF7, 0xCA); // maskmovdqu xmm1, xmm2
        Assert.Equal(SimdOutcome.Ok, SimdExecutor.Execute(in ins, state, access));
        Assert.Equal(0x11, access.Memory[0x300]);
        Assert.Equal(0xEE, access.Memory[0x301]);
        Assert.Equal(0x11, access.Memory[0x302]);
        Assert.Equal(0xEE, access.Memory[0x303]);
        Assert.Equal(0x11, access.Memory[0x30F]);
    }
}
