// struct kvm_pit_config (include/uapi/linux/kvm.h): argument of KVM_CREATE_PIT2.
using System.Runtime.InteropServices;

namespace Ringvisor.Kvm.Native;

[StructLayout(LayoutKind.Sequential)]
internal unsafe struct KvmPitConfig
{
    public const int Size = 64;

    /// <summary>KVM_PIT_SPEAKER_DUMMY: the kernel also claims port 0x61 (speaker gate / PIT channel 2 status).</summary>
    public const uint FlagSpeakerDummy = 1;

    public uint Flags;
    private fixed uint _pad[15];
}
