using System.Runtime.Intrinsics;
using Iced.Intel;
using Ringvisor.Emulator.Fpu;

namespace Ringvisor.Emulator.Tests.Fpu;

/// <summary>Guest input is untrusted: random x87/SSE encodings with random state never throw on the host.</summary>
public class SimdExecutorRobustnessTests
{
    [Fact]
    public void Execute_RandomEncodings_NeverThrows()
    {
        var rng = new Random(12345);
        byte[][] prefixes = [[], [0x66], [0xF3], [0xF2], [0x48], [0x66, 0x48]];
        var executed = 0;
        for (var n = 0; n < 30000; n++)
        {
            var bytes = new List<byte>(prefixes[rng.Next(prefixes.Length)]);
            if (rng.Next(3) == 0)
            {
                bytes.Add((byte)(0xD8 + rng.Next(8)));
            }
            else
            {
                bytes.Add(0x0F);
                if (rng.Next(4) == 0)
                {
                    bytes.Add(rng.Next(2) == 0 ? (byte)0x38 : (byte)0x3A);
                }
            }

            for (var k = 0; k < 8; k++)
            {
                bytes.Add((byte)rng.Next(256));
            }

            var decoder = Decoder.Create(64, new ByteArrayCodeReader(bytes.ToArray()));
            decoder.IP = 0x1000;
            var ins = decoder.Decode();
            if (!SimdExecutor.Handles(ins.Code))
            {
                continue;
            }

            var state = RandomState(rng);
            var access = new FakeSimdAccess { FaultAbove = rng.Next(4) == 0 ? 0x100UL : 0x10000UL };
            foreach (var r in new[] { Register.RAX, Register.RBX, Register.RCX, Register.RDX, Register.RSI,
                         Register.RDI, Register.RBP, Register.RSP, Register.R8, Register.R9, Register.R10,
                         Register.R11, Register.R12, Register.R13, Register.R14, Register.R15 })
            {
                access.Gprs[r] = (ulong)rng.Next(0, 0x100) * (ulong)rng.Next(1, 3);
            }

            access.Rflags = (ulong)rng.Next(0, 0x1000) | 2;
            SimdExecutor.Execute(in ins, state, access);
            executed++;
        }

        Assert.True(executed > 5000, $"only {executed} handled encodings were generated");
    }

    private static FpuState RandomState(Random rng)
    {
        var s = new FpuState();
        s.Reset();
        s.Fcw = (ushort)((rng.Next(0x10000) & 0x1F3F) | 0x40);
        s.Sse41Enabled = rng.Next(2) == 0;
        s.Mxcsr = (uint)rng.Next(0x10000) & FpuState.MxcsrMask;
        s.Fsw = (ushort)(rng.Next(0x10000) & ~0x80);
        s.UpdateErrorSummary();
        if (rng.Next(2) == 0)
        {
            s.Fsw = (ushort)(s.Fsw & ~0x3F);
            s.UpdateErrorSummary();
        }

        s.AbridgedTag = (byte)rng.Next(256);
        for (var k = 0; k < 8; k++)
        {
            ushort[] exps = [0, 1, 0x3FFF, 0x7FFE, 0x7FFF, 0x8000, 0xFFFF, (ushort)rng.Next(0x10000)];
            s.Registers[k] = new Float80((ulong)rng.NextInt64() | (rng.Next(2) == 0 ? 1UL << 63 : 0),
                exps[rng.Next(exps.Length)]);
        }

        for (var k = 0; k < 16; k++)
        {
            Span<byte> b = stackalloc byte[16];
            rng.NextBytes(b);
            s.Xmm[k] = Vector128.Create((ReadOnlySpan<byte>)b);
        }

        return s;
    }
}
