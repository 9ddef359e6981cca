// Helpers for the 512-byte FXSAVE image (64-bit format, SDM Vol. 1 §10.5.1 Table 10-2) the harness loads and dumps.
using System.Buffers.Binary;

namespace Ringvisor.Emulator.Tests.Differential;

internal static class DiffFx
{
    public const int Size = 512;
    public const int Fcw = 0, Fsw = 2, Ftw = 4, Fop = 6, Fip = 8, Fdp = 16, Mxcsr = 24, MxcsrMask = 28, St0 = 32, Xmm0 = 160;

    /// <summary>FNINIT's control word (SDM Vol. 1 §8.1.5) and MXCSR's power-up value (§10.2.3).</summary>
    public const ushort DefaultFcw = 0x037F;
    public const uint DefaultMxcsr = 0x1F80;

    public static byte[] Default()
    {
        var fx = new byte[Size];
        BinaryPrimitives.WriteUInt16LittleEndian(fx.AsSpan(Fcw), DefaultFcw);
        BinaryPrimitives.WriteUInt32LittleEndian(fx.AsSpan(Mxcsr), DefaultMxcsr);
        return fx;
    }

    public static void SetXmm(byte[] fx, int index, UInt128 value) =>
        BinaryPrimitives.WriteUInt128LittleEndian(fx.AsSpan(Xmm0 + (16 * index), 16), value);

    public static UInt128 GetXmm(ReadOnlySpan<byte> fx, int index) =>
        BinaryPrimitives.ReadUInt128LittleEndian(fx.Slice(Xmm0 + (16 * index), 16));

    public static void SetMxcsr(byte[] fx, uint value) => BinaryPrimitives.WriteUInt32LittleEndian(fx.AsSpan(Mxcsr), value);

    public static uint GetMxcsr(ReadOnlySpan<byte> fx) => BinaryPrimitives.ReadUInt32LittleEndian(fx[Mxcsr..]);

    public static void SetFcw(byte[] fx, ushort value) => BinaryPrimitives.WriteUInt16LittleEndian(fx.AsSpan(Fcw), value);
}
