// One pre-decoded instruction: handler kind, operand registers, memory operand and immediate, resolved once at decode.
using System.Runtime.InteropServices;

namespace Ringvisor.Emulator.Decoding;

[StructLayout(LayoutKind.Sequential)]
internal struct FastOp
{
    public const byte NoReg = 0xFF;
    public const byte RipBase = 0xFE;

    public FastKind Kind;
    public byte Size;
    public byte Length;
    public byte Dst;
    public byte Src;
    public byte Aux;
    public byte Base;
    public byte Index;
    public byte Scale;
    public byte Seg;
    public byte AddrSize;
    public byte SrcSize;

    /// <summary>Generic kind only: index of the instruction in its CodePage's GenericInstructions (fills padding: the
    /// struct stays 32 bytes).</summary>
    public ushort GenericIndex;

    /// <summary>Page offset of the instruction in its CodePage (set there; fills the rest of the padding): lets the
    /// fetch confirm a guessed slot without the page's offset map.</summary>
    public ushort Offset;
    public long Disp;
    public ulong Imm;
}
