using Iced.Intel;

namespace Ringvisor.Emulator.Tests.Fpu;

/// <summary>Assembles one instruction with Iced's Assembler and decodes it back, as the interpreter core would.</summary>
internal static class Asm
{
    public static Instruction One(Action<Assembler> emit, int bitness = 64)
    {
        var asm = new Assembler(bitness);
        emit(asm);
        var writer = new CodeWriterImpl();
        asm.Assemble(writer, 0x1000);
        var decoder = Decoder.Create(bitness, new ByteArrayCodeReader(writer.ToArray()));
        decoder.IP = 0x1000;
        return decoder.Decode();
    }

    public static Instruction Bytes(params byte[] bytes)
    {
        var decoder = Decoder.Create(64, new ByteArrayCodeReader(bytes));
        decoder.IP = 0x1000;
        return decoder.Decode();
    }

    private sealed class CodeWriterImpl : CodeWriter
    {
        private readonly List<byte> _bytes = [];

        public override void WriteByte(byte value) => _bytes.Add(value);

        public byte[] ToArray() => [.. _bytes];
    }
}
