using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using Iced.Intel;
using Ringvisor.Emulator.Fpu;
using static Iced.Intel.AssemblerRegisters;

namespace Ringvisor.Emulator.Tests.Fpu;

/// <summary>SSE4.1 against the host CPU's SSE4.1 instructions; disabled SSE4.1 raises #UD.</summary>
public class Sse41Tests
{
    private delegate Vector128<byte> Oracle(Vector128<byte> x, Vector128<byte> y, Vector128<byte> mask);

    private static readonly Dictionary<string, (Action<Assembler> Emit, Oracle Oracle, bool Floats)> s_cases = new()
    {
        ["pmulld"] = (a => a.pmulld(xmm1, xmm2), (x, y, m) => Sse41.MultiplyLow(x.AsInt32(), y.AsInt32()).AsByte(), false),
        ["pmuldq"] = (a => a.pmuldq(xmm1, xmm2), (x, y, m) => Sse41.Multiply(x.AsInt32(), y.AsInt32()).AsByte(), false),
        ["pminsb"] = (a => a.pminsb(xmm1, xmm2), (x, y, m) => Sse41.Min(x.AsSByte(), y.AsSByte()).AsByte(), false),
        ["pminud"] = (a => a.pminud(xmm1, xmm2), (x, y, m) => Sse41.Min(x.AsUInt32(), y.AsUInt32()).AsByte(), false),
        ["pmaxuw"] = (a => a.pmaxuw(xmm1, xmm2), (x, y, m) => Sse41.Max(x.AsUInt16(), y.AsUInt16()).AsByte(), false),
        ["pmaxsd"] = (a => a.pmaxsd(xmm1, xmm2), (x, y, m) => Sse41.Max(x.AsInt32(), y.AsInt32()).AsByte(), false),
        ["pcmpeqq"] = (a => a.pcmpeqq(xmm1, xmm2), (x, y, m) => Sse41.CompareEqual(x.AsInt64(), y.AsInt64()).AsByte(), false),
        ["packusdw"] = (a => a.packusdw(xmm1, xmm2),
            (x, y, m) => Sse41.PackUnsignedSaturate(x.AsInt32(), y.AsInt32()).AsByte(), false),
        ["pmovsxbw"] = (a => a.pmovsxbw(xmm1, xmm2), (x, y, m) => Sse41.ConvertToVector128Int16(y.AsSByte()).AsByte(), false),
        ["pmovsxbq"] = (a => a.pmovsxbq(xmm1, xmm2), (x, y, m) => Sse41.ConvertToVector128Int64(y.AsSByte()).AsByte(), false),
        ["pmovzxwd"] = (a => a.pmovzxwd(xmm1, xmm2), (x, y, m) => Sse41.ConvertToVector128Int32(y.AsUInt16()).AsByte(), false),
        ["pmovzxdq"] = (a => a.pmovzxdq(xmm1, xmm2), (x, y, m) => Sse41.ConvertToVector128Int64(y.AsUInt32()).AsByte(), false),
        ["pmovsxdq"] = (a => a.pmovsxdq(xmm1, xmm2), (x, y, m) => Sse41.ConvertToVector128Int64(y.AsInt32()).AsByte(), false),
        ["pblendw"] = (a => a.pblendw(xmm1, xmm2, 0xA5), (x, y, m) => Sse41.Blend(x.AsInt16(), y.AsInt16(), 0xA5).AsByte(), false),
        ["pblendvb"] = (a => a.pblendvb(xmm1, xmm2), (x, y, m) => Sse41.BlendVariable(x, y, m), false),
        ["blendps"] = (a => a.blendps(xmm1, xmm2, 0x6), (x, y, m) => Sse41.Blend(x.AsSingle(), y.AsSingle(), 0x6).AsByte(), false),
        ["blendvpd"] = (a => a.blendvpd(xmm1, xmm2),
            (x, y, m) => Sse41.BlendVariable(x.AsDouble(), y.AsDouble(), m.AsDouble()).AsByte(), false),
        ["insertps"] = (a => a.insertps(xmm1, xmm2, 0x9A),
            (x, y, m) => Sse41.Insert(x.AsSingle(), y.AsSingle(), 0x9A).AsByte(), false),
        ["phminposuw"] = (a => a.phminposuw(xmm1, xmm2), (x, y, m) => Sse41.MinHorizontal(y.AsUInt16()).AsByte(), false),
        ["mpsadbw"] = (a => a.mpsadbw(xmm1, xmm2, 0x6),
            (x, y, m) => Sse41.MultipleSumAbsoluteDifferences(x, y, 0x6).AsByte(), false),
        ["roundps_floor"] = (a => a.roundps(xmm1, xmm2, 9), (x, y, m) => Sse41.RoundToNegativeInfinity(y.AsSingle()).AsByte(), true),
        ["roundpd_trunc"] = (a => a.roundpd(xmm1, xmm2, 11), (x, y, m) => Sse41.RoundToZero(y.AsDouble()).AsByte(), true),
        ["roundss_nearest"] = (a => a.roundss(xmm1, xmm2, 8),
            (x, y, m) => Sse41.RoundToNearestIntegerScalar(x.AsSingle(), y.AsSingle()).AsByte(), true),
        ["dpps"] = (a => a.dpps(xmm1, xmm2, 0xB7), (x, y, m) => Sse41.DotProduct(x.AsSingle(), y.AsSingle(), 0xB7).AsByte(), true),
        ["dppd"] = (a => a.dppd(xmm1, xmm2, 0x32), (x, y, m) => Sse41.DotProduct(x.AsDouble(), y.AsDouble(), 0x32).AsByte(), true),
    };

    public static TheoryData<string> Names => [.. s_cases.Keys];

    [Theory]
    [MemberData(nameof(Names))]
    public void Execute_Enabled_MatchesHostCpu(string name)
    {
        if (!Sse41.IsSupported)
        {
            return; // The oracle is the host's SSE4.1.
        }

        var (emit, oracle, floats) = s_cases[name];
        var ins = Asm.One(emit);
        Assert.True(SimdExecutor.Handles(ins.Code));
        var rng = new Random(name.Length * 977);
        for (var n = 0; n < 300; n++)
        {
            var x = Random(rng, floats);
            var y = Random(rng, floats);
            var mask = Random(rng, false);
            var state = new FpuState { Sse41Enabled = true };
            state.Xmm[0] = mask;
            state.Xmm[1] = x;
            state.Xmm[2] = y;
            Assert.Equal(SimdOutcome.Ok, SimdExecutor.Execute(in ins, state, new FakeSimdAccess()));
            Assert.Equal(oracle(x, y, mask), state.Xmm[1]);
        }
    }

    private static Vector128<byte> Random(Random rng, bool floats)
    {
        Span<float> f = stackalloc float[4];
        if (floats)
        {
            for (var k = 0; k < 4; k++)
            {
                f[k] = (float)((rng.NextDouble() - 0.5) * Math.Pow(2, rng.Next(-10, 30)));
            }

            return rng.Next(2) == 0
                ? Vector128.Create((ReadOnlySpan<float>)f).AsByte()
                : Vector128.Create((rng.NextDouble() - 0.5) * 1e6, (rng.NextDouble() - 0.5) * 1e-3).AsByte();
        }

        Span<byte> b = stackalloc byte[16];
        rng.NextBytes(b);
        return Vector128.Create((ReadOnlySpan<byte>)b);
    }

    [Fact]
    public void Execute_Disabled_InvalidOpcode()
    {
        var ins = Asm.One(a => a.pminud(xmm1, xmm2));
        Assert.Equal(SimdOutcome.InvalidOpcode, SimdExecutor.Execute(in ins, new FpuState(), new FakeSimdAccess()));
        var pextrwMem = Asm.One(a => a.pextrw(__word_ptr[rbx], xmm1, 1));
        Assert.Equal(SimdOutcome.InvalidOpcode, SimdExecutor.Execute(in pextrwMem, new FpuState(), new FakeSimdAccess()));
    }

    [Theory]
    [InlineData(0x0FUL, 0xF0UL, 0x40UL)] // disjoint: ZF; src & ~dst nonzero: CF clear
    [InlineData(0xFFUL, 0x0FUL, 0x01UL)] // src & ~dst = 0: CF; overlap: ZF clear
    [InlineData(0xFFUL, 0x00UL, 0x41UL)] // src = 0: ZF and CF
    public void Ptest_SetsZfCfClearsOthers(ulong dst, ulong src, ulong flags)
    {
        var ins = Asm.One(a => a.ptest(xmm1, xmm2));
        var state = new FpuState { Sse41Enabled = true };
        state.Xmm[1] = Vector128.CreateScalar(dst).AsByte();
        state.Xmm[2] = Vector128.CreateScalar(src).AsByte();
        var access = new FakeSimdAccess { Rflags = 0x2 | 0x8D5 };
        Assert.Equal(SimdOutcome.Ok, SimdExecutor.Execute(in ins, state, access));
        Assert.Equal(0x2 | flags, access.Rflags); // OF, SF, AF, PF cleared
    }

    [Fact]
    public void PextrAndPinsr_GprAndMemoryForms()
    {
        var state = new FpuState { Sse41Enabled = true };
        state.Xmm[3] = Vector128.Create(0x1122_3344_5566_7788UL, 0x99AA_BBCC_DDEE_FF00UL).AsByte();
        var access = new FakeSimdAccess();
        access.Gprs[Register.RBX] = 0x200;
        access.Gprs[Register.RAX] = ulong.MaxValue;
        Assert.Equal(SimdOutcome.Ok, SimdExecutor.Execute(Asm.One(a => a.pextrb(eax, xmm3, 9)), state, access));
        Assert.Equal(0xFFUL, access.Gprs[Register.RAX]); // byte 9 of ...DDEE_FF00 (high qword)
        Assert.Equal(SimdOutcome.Ok, SimdExecutor.Execute(Asm.One(a => a.pextrq(__qword_ptr[rbx], xmm3, 1)), state, access));
        Assert.Equal(0x99AA_BBCC_DDEE_FF00UL, access.ReadUInt64(0x200));
        Assert.Equal(SimdOutcome.Ok, SimdExecutor.Execute(Asm.One(a => a.pextrw(__word_ptr[rbx + 8], xmm3, 1)), state, access));
        Assert.Equal(0x5566, BitConverter.ToUInt16(access.Memory, 0x208));
        access.Gprs[Register.RCX] = 0xABCD_EF01;
        Assert.Equal(SimdOutcome.Ok, SimdExecutor.Execute(Asm.One(a => a.pinsrd(xmm3, ecx, 3)), state, access));
        Assert.Equal(0xABCD_EF01u, state.Xmm[3].AsUInt32().GetElement(3));
        Assert.Equal(SimdOutcome.Ok, SimdExecutor.Execute(Asm.One(a => a.pinsrb(xmm3, __byte_ptr[rbx], 0)), state, access));
        Assert.Equal(0x00, state.Xmm[3].GetElement(0));
    }
}
