// struct kvm_ioeventfd (include/uapi/linux/kvm.h): a guest write to addr signals an eventfd instead of exiting.
using System.Runtime.InteropServices;

namespace Ringvisor.Kvm.Native;

[StructLayout(LayoutKind.Sequential)]
internal unsafe struct KvmIoeventfd
{
    public const int Size = 64;

    // enum kvm_ioeventfd_flag_nr_*: datamatch = bit 0, pio = bit 1, deassign = bit 2.
    public const uint FlagDatamatch = 1 << 0;
    public const uint FlagPio = 1 << 1;
    public const uint FlagDeassign = 1 << 2;

    public ulong Datamatch;
    public ulong Addr;
    public uint Len;
    public int Fd;
    public uint Flags;
    private fixed byte _pad[36];
}
