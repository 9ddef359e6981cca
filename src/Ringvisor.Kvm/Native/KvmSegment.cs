// struct kvm_segment (arch/x86/include/uapi/asm/kvm.h): a segment register and its hidden descriptor cache.
using System.Runtime.InteropServices;

namespace Ringvisor.Kvm.Native;

[StructLayout(LayoutKind.Sequential)]
internal struct KvmSegment
{
    public const int Size = 24;

    public ulong Base;
    public uint Limit;
    public ushort Selector;
    public byte Type;
    public byte Present, Dpl, Db, S, L, G, Avl;
    public byte Unusable;
    private readonly byte _padding;
}
