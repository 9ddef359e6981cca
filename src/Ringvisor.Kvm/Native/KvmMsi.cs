// struct kvm_msi (include/uapi/linux/kvm.h): argument of KVM_SIGNAL_MSI.
using System.Runtime.InteropServices;

namespace Ringvisor.Kvm.Native;

[StructLayout(LayoutKind.Sequential)]
internal unsafe struct KvmMsi
{
    public const int Size = 32;

    public uint AddressLo;
    public uint AddressHi;
    public uint Data;
    public uint Flags;
    public uint Devid;
    private fixed byte _pad[12];
}
