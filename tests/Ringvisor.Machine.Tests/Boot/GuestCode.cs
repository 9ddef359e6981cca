// Tiny guest entry stubs assembled with Iced, placed at the entry points of the synthetic images.
using Iced.Intel;
using static Iced.Intel.AssemblerRegisters;

namespace Ringvisor.Machine.Tests.Boot;

internal static class GuestCode
{
    /// <summary>64-bit: read boot_params.hdr.cmd_line_ptr through RSI and halt (a kernel's first look at its zero page).</summary>
    public static byte[] LongModeStub(ulong rip)
    {
        var a = new Assembler(64);
        a.mov(eax, __dword_ptr[rsi + 0x228]);
        a.hlt();
        return Assemble(a, rip);
    }

    /// <summary>32-bit: check EAX for the multiboot magic and halt.</summary>
    public static byte[] ProtectedModeStub(ulong eip)
    {
        var a = new Assembler(32);
        var done = a.CreateLabel();
        a.cmp(eax, 0x2BADB002);
        a.jne(done);
        a.mov(ecx, __dword_ptr[ebx]);
        a.Label(ref done);
        a.hlt();
        return Assemble(a, eip);
    }

    private static byte[] Assemble(Assembler a, ulong rip)
    {
        var writer = new ByteWriter();
        a.Assemble(writer, rip);
        return [.. writer.Bytes];
    }

    private sealed class ByteWriter : CodeWriter
    {
        public List<byte> Bytes { get; } = [];

        public override void WriteByte(byte value) => Bytes.Add(value);
    }
}
