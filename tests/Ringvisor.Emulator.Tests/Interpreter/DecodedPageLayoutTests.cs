// A decoded page keeps Iced's instruction only for Generic forms (CodePage.GenericInstructions, found through
// FastOp.GenericIndex); fast forms are traced from a fresh decode of the page. Code that interleaves the two, with more
// of each than the arrays start with, must run and trace as Iced decodes it.
using System.Buffers.Binary;
using Iced.Intel;
using Ringvisor.Core.Cpu;
using static Iced.Intel.AssemblerRegisters;

namespace Ringvisor.Emulator.Tests.Interpreter;

public sealed class DecodedPageLayoutTests
{
    private const int Steps = 48;

    // Per step: a fast MOV r64, imm64, a Generic NOT/NEG/BSWAP of it, and a fast ADD into the sum.
    private static void Build(Assembler a)
    {
        a.xor(ebx, ebx);
        for (int i = 0; i < Steps; i++)
        {
            a.mov(rax, Value(i));
            switch (i % 3)
            {
                case 0:
                    a.not(rax);
                    break;
                case 1:
                    a.neg(rax);
                    break;
                default:
                    a.bswap(rax);
                    break;
            }

            a.add(rbx, rax);
        }

        a.hlt();
    }

    private static ulong Value(int i) => 0x0102_0304_0506_0708UL * (ulong)(i + 1) + (ulong)i;

    [Fact]
    public void InterleavedFastAndGenericForms_Interpreted_SumMatches()
    {
        using var g = new GuestHarness(null, new BtOptions { Translation = false });
        g.SetupLongMode();
        g.Code64(GuestHarness.CodeBase, Build);

        Assert.Equal(VcpuExitReason.Halted, g.Run().Reason);
        ulong expected = 0;
        for (int i = 0; i < Steps; i++)
        {
            ulong v = Value(i);
            expected += (i % 3) switch
            {
                0 => ~v,
                1 => 0UL - v,
                _ => BinaryPrimitives.ReverseEndianness(v),
            };
        }

        Assert.Equal(expected, g.State.Registers.Rbx);
    }

    [Fact]
    public void InterleavedFastAndGenericForms_Traced_EachLineShowsIcedDisassembly()
    {
        string path = Path.GetTempFileName();
        try
        {
            using (var g = new GuestHarness(null, new BtOptions { Translation = false, TracePath = path }))
            {
                g.SetupLongMode();
                g.Code64(GuestHarness.CodeBase, Build);
                Assert.Equal(VcpuExitReason.Halted, g.Run().Reason);
            }

            // The reference: Iced's own decoding and formatting of the same bytes.
            byte[] code = GuestHarness.Assemble(64, GuestHarness.CodeBase, Build);
            var decoder = Decoder.Create(64, new ByteArrayCodeReader(code), GuestHarness.CodeBase);
            var formatter = new IntelFormatter();
            var output = new StringOutput();
            var expected = new List<string>();
            while (decoder.IP < GuestHarness.CodeBase + (ulong)code.Length)
            {
                decoder.Decode(out var ins);
                formatter.Format(ins, output);
                expected.Add(output.ToStringAndReset());
            }

            string[] lines = File.ReadAllLines(path).Where(l => !l.StartsWith("  **", StringComparison.Ordinal)).ToArray();
            Assert.Equal(expected.Count, lines.Length);
            for (int i = 0; i < lines.Length; i++)
            {
                Assert.EndsWith(expected[i], lines[i], StringComparison.Ordinal);
            }
        }
        finally
        {
            File.Delete(path);
        }
    }
}
