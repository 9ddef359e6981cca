// kvm_run.internal (KVM_EXIT_INTERNAL_ERROR): a suberror and up to 16 words of diagnostic data.
using System.Runtime.InteropServices;

namespace Ringvisor.Kvm.Native;

[StructLayout(LayoutKind.Sequential)]
internal unsafe struct KvmRunInternal
{
    public const int MaxData = 16;

    public uint Suberror;
    public uint Ndata;
    public fixed ulong Data[MaxData];
}
