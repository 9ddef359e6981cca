using System.Buffers.Binary;
using System.Runtime.Intrinsics;

namespace Ringvisor.Emulator.Fpu;

/// <summary>
/// The x87/MMX/SSE architectural state of one vCPU with FXSAVE semantics (Intel SDM Vol. 1 8.1, 10.5.1,
/// Table 10-2): control/status words, the abridged tag word, last-instruction pointers, MXCSR, the eight
/// physical 80-bit registers (MM0-7 alias their significands) and XMM0-15.
/// </summary>
public sealed class FpuState
{
    /// <summary>Size of the FXSAVE/FXRSTOR memory image (SDM Vol. 1 10.5.1).</summary>
    public const int FxSaveSize = 512;

    /// <summary>MXCSR bits this implementation supports: FZ, RC, masks, DAZ, flags (SDM Vol. 1 10.2.3.1).
    /// DAZ (bit 6) is implemented, so MXCSR_MASK is 0xFFFF.</summary>
    public const uint MxcsrMask = 0xFFFF;

    /// <summary>MXCSR after reset/INIT (SDM Vol. 3A Table 9-1): all exceptions masked, round to nearest.</summary>
    public const uint MxcsrDefault = 0x1F80;

    /// <summary>FCW after FNINIT (SDM Vol. 1 8.1.5): all masked, 64-bit precision, round to nearest.</summary>
    public const ushort FcwDefault = 0x037F;

    // FSW bits (SDM Vol. 1 Figure 8-4).
    public const ushort FswIe = 1 << 0;
    public const ushort FswDe = 1 << 1;
    public const ushort FswZe = 1 << 2;
    public const ushort FswOe = 1 << 3;
    public const ushort FswUe = 1 << 4;
    public const ushort FswPe = 1 << 5;
    public const ushort FswSf = 1 << 6;
    public const ushort FswEs = 1 << 7;
    public const ushort FswC0 = 1 << 8;
    public const ushort FswC1 = 1 << 9;
    public const ushort FswC2 = 1 << 10;
    public const ushort FswC3 = 1 << 14;
    public const ushort FswB = 1 << 15;
    private const int FswTopShift = 11;

    /// <summary>x87 control word.</summary>
    public ushort Fcw = FcwDefault;

    /// <summary>Status word without TOP (bits 11-13 are kept in <see cref="Top"/>).</summary>
    private ushort _fswBits;

    /// <summary>Top-of-stack pointer (0-7).</summary>
    public int Top;

    /// <summary>Abridged tag word: bit i set = physical register i is valid (not empty).</summary>
    public byte AbridgedTag;

    /// <summary>Last x87 opcode (11 bits: low 3 bits of the first opcode byte, then the ModR/M byte).</summary>
    public ushort Fop;

    public ulong Fip;
    public ushort Fcs;
    public ulong Fdp;
    public ushort Fds;

    public uint Mxcsr = MxcsrDefault;

    /// <summary>The physical x87 registers R0-R7 (ST(i) = R[(TOP + i) mod 8]); MMi is the significand of Ri.</summary>
    public readonly Float80[] Registers = new Float80[8];

    /// <summary>Configuration, not architectural state: whether SSE4.1 instructions execute (set it exactly when
    /// CPUID advertises SSE4.1; otherwise they raise #UD).</summary>
    public bool Sse41Enabled;

    /// <summary>XMM0-15.</summary>
    public readonly Vector128<byte>[] Xmm = new Vector128<byte>[16];

    /// <summary>The full status word with TOP.</summary>
    public ushort Fsw
    {
        get => (ushort)((_fswBits & ~(7 << FswTopShift)) | (Top << FswTopShift));
        set
        {
            _fswBits = (ushort)(value & ~(7 << FswTopShift));
            Top = (value >> FswTopShift) & 7;
        }
    }

    /// <summary>Architectural reset as KVM does it (FCW 0x37F, MXCSR 0x1F80, all registers zero and empty).</summary>
    public void Reset()
    {
        Fninit();
        Mxcsr = MxcsrDefault;
        Array.Clear(Registers);
        Array.Clear(Xmm);
    }

    /// <summary>FNINIT (SDM Vol. 2A FINIT): FCW 0x37F, FSW 0, all tags empty, pointers and FOP cleared.</summary>
    public void Fninit()
    {
        Fcw = FcwDefault;
        Fsw = 0;
        AbridgedTag = 0;
        Fop = 0;
        Fip = 0;
        Fcs = 0;
        Fdp = 0;
        Fds = 0;
    }

    public ref Float80 St(int i) => ref Registers[(Top + i) & 7];

    public bool IsEmpty(int i) => (AbridgedTag & (1 << ((Top + i) & 7))) == 0;

    public void SetValid(int i) => AbridgedTag |= (byte)(1 << ((Top + i) & 7));

    public void SetEmpty(int i) => AbridgedTag &= (byte)~(1 << ((Top + i) & 7));

    public ulong GetMm(int i) => Registers[i & 7].Significand;

    /// <summary>An MMX write sets the exponent/sign field to all ones (SDM Vol. 1 9.5.1).</summary>
    public void SetMm(int i, ulong value) => Registers[i & 7] = new Float80(value, 0xFFFF);

    /// <summary>Any MMX instruction except EMMS sets TOP = 0 and all tags valid (SDM Vol. 1 9.5.1, Table 9-2).</summary>
    public void EnterMmxMode()
    {
        Top = 0;
        AbridgedTag = 0xFF;
    }

    /// <summary>The 2-bit tag of physical register <paramref name="physical"/> as FSTENV reports it, computed from its
    /// contents (SDM Vol. 1 8.1.7, 10.5.1.1): 0 valid, 1 zero, 2 special, 3 empty.</summary>
    public int FullTag(int physical)
    {
        if ((AbridgedTag & (1 << physical)) == 0)
        {
            return 3;
        }

        var r = Registers[physical];
        if (r.Exponent == Float80.MaxExponent)
        {
            return 2;
        }

        if (r.Exponent == 0)
        {
            return r.Significand == 0 ? 1 : 2;
        }

        return (r.Significand & Float80.IntegerBit) != 0 ? 0 : 2;
    }

    public ushort FullTagWord()
    {
        var w = 0;
        for (var i = 0; i < 8; i++)
        {
            w |= FullTag(i) << (2 * i);
        }

        return (ushort)w;
    }

    /// <summary>FLDENV/FRSTOR: only "empty" (11b) matters; other tags are recomputed from contents.</summary>
    public void LoadFullTagWord(ushort tags)
    {
        byte abridged = 0;
        for (var i = 0; i < 8; i++)
        {
            if (((tags >> (2 * i)) & 3) != 3)
            {
                abridged |= (byte)(1 << i);
            }
        }

        AbridgedTag = abridged;
    }

    /// <summary>Recomputes FSW.ES and B from the exception flags and FCW masks (SDM Vol. 1 8.1.3.1).</summary>
    public void UpdateErrorSummary()
    {
        var unmasked = _fswBits & ~Fcw & 0x3F;
        if (unmasked != 0)
        {
            _fswBits |= FswEs | FswB;
        }
        else
        {
            _fswBits &= unchecked((ushort)~(FswEs | FswB));
        }
    }

    /// <summary>Writes the FXSAVE image (SDM Vol. 1 Table 10-2; REX.W form Table 10-3 with 64-bit FIP/FDP).
    /// XMM8-15 are only stored when <paramref name="xmmCount"/> is 16 (64-bit mode). Bytes 464-511 are untouched;
    /// reserved bytes 0-463 are written as zero.</summary>
    public void FxSave(Span<byte> image, bool rexW, int xmmCount)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(image.Length, FxSaveSize);
        BinaryPrimitives.WriteUInt16LittleEndian(image, Fcw);
        BinaryPrimitives.WriteUInt16LittleEndian(image[2..], Fsw);
        image[4] = AbridgedTag;
        image[5] = 0;
        BinaryPrimitives.WriteUInt16LittleEndian(image[6..], (ushort)(Fop & 0x7FF));
        if (rexW)
        {
            BinaryPrimitives.WriteUInt64LittleEndian(image[8..], Fip);
            BinaryPrimitives.WriteUInt64LittleEndian(image[16..], Fdp);
        }
        else
        {
            BinaryPrimitives.WriteUInt32LittleEndian(image[8..], (uint)Fip);
            BinaryPrimitives.WriteUInt16LittleEndian(image[12..], Fcs);
            BinaryPrimitives.WriteUInt16LittleEndian(image[14..], 0);
            BinaryPrimitives.WriteUInt32LittleEndian(image[16..], (uint)Fdp);
            BinaryPrimitives.WriteUInt16LittleEndian(image[20..], Fds);
            BinaryPrimitives.WriteUInt16LittleEndian(image[22..], 0);
        }

        BinaryPrimitives.WriteUInt32LittleEndian(image[24..], Mxcsr);
        BinaryPrimitives.WriteUInt32LittleEndian(image[28..], MxcsrMask);
        for (var i = 0; i < 8; i++)
        {
            var slot = image.Slice(32 + (16 * i), 16);
            var r = St(i);
            BinaryPrimitives.WriteUInt64LittleEndian(slot, r.Significand);
            BinaryPrimitives.WriteUInt16LittleEndian(slot[8..], r.SignExponent);
            slot[10..].Clear();
        }

        for (var i = 0; i < xmmCount; i++)
        {
            Xmm[i].CopyTo(image.Slice(160 + (16 * i), 16));
        }

        if (xmmCount < 16)
        {
            image[(160 + (16 * xmmCount))..288].Clear();
        }

        image[416..464].Clear();
    }

    /// <summary>Loads an FXSAVE image. Returns false (the caller raises #GP(0), nothing changed) when MXCSR has bits
    /// outside <see cref="MxcsrMask"/> (SDM Vol. 2A FXRSTOR).</summary>
    public bool FxRstor(ReadOnlySpan<byte> image, bool rexW, int xmmCount)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(image.Length, FxSaveSize);
        var mxcsr = BinaryPrimitives.ReadUInt32LittleEndian(image[24..]);
        if ((mxcsr & ~MxcsrMask) != 0)
        {
            return false;
        }

        Fcw = BinaryPrimitives.ReadUInt16LittleEndian(image);
        Fsw = BinaryPrimitives.ReadUInt16LittleEndian(image[2..]);
        AbridgedTag = image[4];
        Fop = (ushort)(BinaryPrimitives.ReadUInt16LittleEndian(image[6..]) & 0x7FF);
        if (rexW)
        {
            Fip = BinaryPrimitives.ReadUInt64LittleEndian(image[8..]);
            Fdp = BinaryPrimitives.ReadUInt64LittleEndian(image[16..]);
            Fcs = 0;
            Fds = 0;
        }
        else
        {
            Fip = BinaryPrimitives.ReadUInt32LittleEndian(image[8..]);
            Fcs = BinaryPrimitives.ReadUInt16LittleEndian(image[12..]);
            Fdp = BinaryPrimitives.ReadUInt32LittleEndian(image[16..]);
            Fds = BinaryPrimitives.ReadUInt16LittleEndian(image[20..]);
        }

        Mxcsr = mxcsr;
        for (var i = 0; i < 8; i++)
        {
            var slot = image.Slice(32 + (16 * i), 16);
            St(i) = new Float80(
                BinaryPrimitives.ReadUInt64LittleEndian(slot),
                BinaryPrimitives.ReadUInt16LittleEndian(slot[8..]));
        }

        for (var i = 0; i < xmmCount; i++)
        {
            Xmm[i] = Vector128.Create(image.Slice(160 + (16 * i), 16));
        }

        // FSW.ES is taken from the image as is, like the CPU does: a pending unmasked exception stays pending.
        return true;
    }

    /// <summary>A versioned snapshot record (design principle 4): the 64-bit FXSAVE image of all state.</summary>
    public FpuStateRecord Save()
    {
        var image = new byte[FxSaveSize];
        FxSave(image, rexW: true, xmmCount: 16);
        BinaryPrimitives.WriteUInt16LittleEndian(image.AsSpan(464), Fcs);
        BinaryPrimitives.WriteUInt16LittleEndian(image.AsSpan(466), Fds);
        return new FpuStateRecord(FpuStateRecord.CurrentVersion, image);
    }

    public void Restore(FpuStateRecord record)
    {
        ArgumentNullException.ThrowIfNull(record);
        if (record.Version != FpuStateRecord.CurrentVersion || record.FxImage.Length != FxSaveSize)
        {
            throw new ArgumentException($"Unsupported FPU state record version {record.Version}.", nameof(record));
        }

        if (!FxRstor(record.FxImage, rexW: true, xmmCount: 16))
        {
            throw new ArgumentException("FPU state record has reserved MXCSR bits set.", nameof(record));
        }

        Fcs = BinaryPrimitives.ReadUInt16LittleEndian(record.FxImage.AsSpan(464));
        Fds = BinaryPrimitives.ReadUInt16LittleEndian(record.FxImage.AsSpan(466));
    }
}
