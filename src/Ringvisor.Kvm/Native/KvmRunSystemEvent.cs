// kvm_run.system_event (KVM_EXIT_SYSTEM_EVENT): shutdown, reset, crash... requested through the CPU.
using System.Runtime.InteropServices;

namespace Ringvisor.Kvm.Native;

[StructLayout(LayoutKind.Sequential)]
internal unsafe struct KvmRunSystemEvent
{
    public uint Type;
    public uint Ndata;
    public fixed ulong Data[16];
}
