// The operations translated SSE code calls (UnitCompiler.Simd.cs); small enough for the JIT to inline into the unit.
// Semantics as in SDM Vol. 2 for each instruction (and Fpu/SimdExecutor.cs, which the differential tests hold to the
// real CPU).
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;

namespace Ringvisor.Emulator.Translation;

internal static class SimdOps
{
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector128<byte> Xor(Vector128<byte> a, Vector128<byte> b) => a ^ b;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector128<byte> Or(Vector128<byte> a, Vector128<byte> b) => a | b;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector128<byte> And(Vector128<byte> a, Vector128<byte> b) => a & b;

    /// <summary>PANDN: (NOT a) AND b, a being the destination.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector128<byte> AndNot(Vector128<byte> a, Vector128<byte> b) => Vector128.AndNot(b, a);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector128<byte> CmpEqB(Vector128<byte> a, Vector128<byte> b) => Vector128.Equals(a, b);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector128<byte> CmpEqW(Vector128<byte> a, Vector128<byte> b) => Vector128.Equals(a.AsUInt16(), b.AsUInt16()).AsByte();

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector128<byte> CmpEqD(Vector128<byte> a, Vector128<byte> b) => Vector128.Equals(a.AsUInt32(), b.AsUInt32()).AsByte();

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector128<byte> AddD(Vector128<byte> a, Vector128<byte> b) => (a.AsUInt32() + b.AsUInt32()).AsByte();

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector128<byte> AddQ(Vector128<byte> a, Vector128<byte> b) => (a.AsUInt64() + b.AsUInt64()).AsByte();

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector128<byte> SubQ(Vector128<byte> a, Vector128<byte> b) => (a.AsUInt64() - b.AsUInt64()).AsByte();

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector128<byte> MinUB(Vector128<byte> a, Vector128<byte> b) => Vector128.Min(a, b);

    /// <summary>PUNPCKLBW: bytes a0 b0 a1 b1 ... a7 b7.</summary>
    public static Vector128<byte> UnpackLowB(Vector128<byte> a, Vector128<byte> b)
    {
        if (System.Runtime.Intrinsics.X86.Sse2.IsSupported)
        {
            return System.Runtime.Intrinsics.X86.Sse2.UnpackLow(a, b);
        }

        Span<byte> r = stackalloc byte[16];
        for (int i = 0; i < 8; i++)
        {
            r[2 * i] = a.GetElement(i);
            r[(2 * i) + 1] = b.GetElement(i);
        }

        return Vector128.Create((ReadOnlySpan<byte>)r);
    }

    /// <summary>PUNPCKLWD: words a0 b0 a1 b1 a2 b2 a3 b3.</summary>
    public static Vector128<byte> UnpackLowW(Vector128<byte> a, Vector128<byte> b) =>
        System.Runtime.Intrinsics.X86.Sse2.IsSupported
            ? System.Runtime.Intrinsics.X86.Sse2.UnpackLow(a.AsUInt16(), b.AsUInt16()).AsByte()
            : Interleave(a, b, 2, 0);

    /// <summary>PUNPCKLDQ: doublewords a0 b0 a1 b1.</summary>
    public static Vector128<byte> UnpackLowD(Vector128<byte> a, Vector128<byte> b) =>
        System.Runtime.Intrinsics.X86.Sse2.IsSupported
            ? System.Runtime.Intrinsics.X86.Sse2.UnpackLow(a.AsUInt32(), b.AsUInt32()).AsByte()
            : Interleave(a, b, 4, 0);

    /// <summary>PUNPCKHBW: bytes a8 b8 ... a15 b15.</summary>
    public static Vector128<byte> UnpackHighB(Vector128<byte> a, Vector128<byte> b) =>
        System.Runtime.Intrinsics.X86.Sse2.IsSupported ? System.Runtime.Intrinsics.X86.Sse2.UnpackHigh(a, b) : Interleave(a, b, 1, 8);

    /// <summary>PUNPCKHWD: words a4 b4 ... a7 b7.</summary>
    public static Vector128<byte> UnpackHighW(Vector128<byte> a, Vector128<byte> b) =>
        System.Runtime.Intrinsics.X86.Sse2.IsSupported
            ? System.Runtime.Intrinsics.X86.Sse2.UnpackHigh(a.AsUInt16(), b.AsUInt16()).AsByte()
            : Interleave(a, b, 2, 8);

    /// <summary>PUNPCKHDQ: doublewords a2 b2 a3 b3.</summary>
    public static Vector128<byte> UnpackHighD(Vector128<byte> a, Vector128<byte> b) =>
        System.Runtime.Intrinsics.X86.Sse2.IsSupported
            ? System.Runtime.Intrinsics.X86.Sse2.UnpackHigh(a.AsUInt32(), b.AsUInt32()).AsByte()
            : Interleave(a, b, 4, 8);

    /// <summary>PUNPCKHQDQ: the high quadword of a, then the high quadword of b.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector128<byte> UnpackHighQ(Vector128<byte> a, Vector128<byte> b) =>
        Vector128.Create(a.AsUInt64().GetElement(1), b.AsUInt64().GetElement(1)).AsByte();

    /// <summary>PSHUFB: byte i is a[b[i] &amp; 15], or 0 where bit 7 of b[i] is set.</summary>
    public static Vector128<byte> Pshufb(Vector128<byte> a, Vector128<byte> b)
    {
        if (System.Runtime.Intrinsics.X86.Ssse3.IsSupported)
        {
            return System.Runtime.Intrinsics.X86.Ssse3.Shuffle(a, b);
        }

        Span<byte> r = stackalloc byte[16];
        for (int i = 0; i < 16; i++)
        {
            byte index = b.GetElement(i);
            r[i] = (index & 0x80) != 0 ? (byte)0 : a.GetElement(index & 15);
        }

        return Vector128.Create((ReadOnlySpan<byte>)r);
    }

    /// <summary>Elements of <paramref name="width"/> bytes from <paramref name="from"/> (byte offset: 0 for the low
    /// half, 8 for the high half) of a and b, interleaved a first (the PUNPCK forms without SSE2 intrinsics).</summary>
    private static Vector128<byte> Interleave(Vector128<byte> a, Vector128<byte> b, int width, int from)
    {
        Span<byte> r = stackalloc byte[16];
        for (int e = 0; e < 8 / width; e++)
        {
            for (int k = 0; k < width; k++)
            {
                r[(2 * e * width) + k] = a.GetElement(from + (e * width) + k);
                r[(((2 * e) + 1) * width) + k] = b.GetElement(from + (e * width) + k);
            }
        }

        return Vector128.Create((ReadOnlySpan<byte>)r);
    }

    /// <summary>PUNPCKLQDQ: the low quadword of a, then the low quadword of b.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector128<byte> UnpackLowQ(Vector128<byte> a, Vector128<byte> b) =>
        Vector128.Create(a.AsUInt64().ToScalar(), b.AsUInt64().ToScalar()).AsByte();

    /// <summary>PSHUFD: dword i of the result is dword ((imm >> 2i) &amp; 3) of the source.</summary>
    public static Vector128<byte> Pshufd(Vector128<byte> src, int imm)
    {
        var s = src.AsUInt32();
        return Vector128.Create(s.GetElement(imm & 3), s.GetElement((imm >> 2) & 3), s.GetElement((imm >> 4) & 3), s.GetElement((imm >> 6) & 3)).AsByte();
    }

    /// <summary>The value zero-extended to 128 bits (MOVD/MOVQ to an XMM register; the caller masks 32-bit values).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector128<byte> FromScalar(ulong value) => Vector128.CreateScalar(value).AsByte();

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static ulong Low64(Vector128<byte> v) => v.AsUInt64().ToScalar();

    /// <summary>PMOVMSKB: the most significant bit of each byte.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static ulong MoveMask(Vector128<byte> v) => v.ExtractMostSignificantBits();
}
