namespace Ringvisor.Core.Cpu;

/// <summary>
/// A segment register with its hidden descriptor cache, in the shape of KVM's kvm_segment
/// (Intel SDM Vol. 3A §3.4.3). <see cref="Type"/> is the 4-bit descriptor type field.
/// </summary>
public struct SegmentRegister
{
    public ulong Base;
    public uint Limit;
    public ushort Selector;
    public byte Type;
    public bool Present;
    public byte Dpl;
    /// <summary>Default operation size (D/B bit).</summary>
    public bool DefaultBig;
    /// <summary>Code or data segment (S bit); false for system segments (TSS, LDT).</summary>
    public bool CodeOrData;
    /// <summary>64-bit code segment (L bit).</summary>
    public bool Long;
    public bool Granularity;
    public bool Available;
    public bool Unusable;

    /// <summary>A real-mode style segment: base = selector * 16, 64 KiB limit, read/write data or code.</summary>
    public static SegmentRegister RealMode(ushort selector, bool code) => new()
    {
        Selector = selector,
        Base = (ulong)selector << 4,
        Limit = 0xFFFF,
        Type = code ? (byte)0xB : (byte)0x3,
        Present = true,
        CodeOrData = true,
    };

    /// <summary>A flat 4 GiB segment for 32-bit protected mode or, with <paramref name="longMode"/>, a 64-bit code segment.</summary>
    public static SegmentRegister Flat(ushort selector, bool code, bool longMode = false) => new()
    {
        Selector = selector,
        Base = 0,
        Limit = 0xFFFF_FFFF,
        Type = code ? (byte)0xB : (byte)0x3,
        Present = true,
        CodeOrData = true,
        DefaultBig = !longMode,
        Long = code && longMode,
        Granularity = true,
    };

    /// <summary>Packs the cache into the attribute bits of a GDT descriptor (bits 40..55 of the 8-byte entry).</summary>
    public readonly ushort Attributes =>
        (ushort)(Type | (CodeOrData ? 1 << 4 : 0) | (Dpl << 5) | (Present ? 1 << 7 : 0) |
                 (Available ? 1 << 12 : 0) | (Long ? 1 << 13 : 0) | (DefaultBig ? 1 << 14 : 0) | (Granularity ? 1 << 15 : 0));
}
