// kvm_run.fail_entry (KVM_EXIT_FAIL_ENTRY): the hardware refused VM entry (VMX exit qualification / SVM code).
using System.Runtime.InteropServices;

namespace Ringvisor.Kvm.Native;

[StructLayout(LayoutKind.Sequential)]
internal struct KvmRunFailEntry
{
    public ulong HardwareEntryFailureReason;
    public uint Cpu;
}
