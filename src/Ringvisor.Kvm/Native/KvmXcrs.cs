// struct kvm_xcrs and struct kvm_xcr (arch/x86/include/uapi/asm/kvm.h): the extended control registers (XCR0) of a
// vCPU for KVM_GET_XCRS / KVM_SET_XCRS.
using System.Runtime.InteropServices;

namespace Ringvisor.Kvm.Native;

[StructLayout(LayoutKind.Sequential)]
internal unsafe struct KvmXcrs
{
    /// <summary>4 + 4 + KVM_MAX_XCRS (16) * 16 + 16 * 8 bytes of padding.</summary>
    public const int Size = 392;

    /// <summary>KVM_MAX_XCRS.</summary>
    public const int MaxXcrs = 16;

    /// <summary>Each kvm_xcr is { u32 xcr; u32 reserved; u64 value; }: 16 bytes.</summary>
    public const int XcrSize = 16;

    public uint NrXcrs;
    public uint Flags;

    /// <summary>MaxXcrs kvm_xcr entries, two ulongs each (xcr | reserved &lt;&lt; 32, value); use the helpers.</summary>
    public fixed ulong Xcrs[MaxXcrs * 2];
    private fixed ulong _padding[16];

    /// <summary>Entry <paramref name="i"/>: the XCR number.</summary>
    public readonly uint XcrIndex(int i) => (uint)Xcrs[i * 2];

    public readonly ulong XcrValue(int i) => Xcrs[(i * 2) + 1];

    public void SetXcr(int i, uint xcr, ulong value)
    {
        Xcrs[i * 2] = xcr;
        Xcrs[(i * 2) + 1] = value;
    }
}
