// struct kvm_fpu (arch/x86/include/uapi/asm/kvm.h): the legacy FXSAVE-shaped x87/SSE state.
using System.Runtime.InteropServices;

namespace Ringvisor.Kvm.Native;

[StructLayout(LayoutKind.Sequential)]
internal unsafe struct KvmFpu
{
    public const int Size = 416;

    public fixed byte Fpr[8 * 16];
    public ushort Fcw;
    public ushort Fsw;

    /// <summary>Abridged tag word (FXSAVE format): a bit per register, 1 = valid; 0 = all empty.</summary>
    public byte Ftwx;
    private readonly byte _pad1;
    public ushort LastOpcode;
    public ulong LastIp;
    public ulong LastDp;
    public fixed byte Xmm[16 * 16];
    public uint Mxcsr;
    private readonly uint _pad2;
}
