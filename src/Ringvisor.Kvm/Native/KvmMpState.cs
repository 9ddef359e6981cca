// struct kvm_mp_state (include/uapi/linux/kvm.h).
using System.Runtime.InteropServices;

namespace Ringvisor.Kvm.Native;

[StructLayout(LayoutKind.Sequential)]
internal struct KvmMpState
{
    public const int Size = 4;

    public uint MpState;
}
