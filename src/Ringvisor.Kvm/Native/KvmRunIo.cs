// kvm_run.io (KVM_EXIT_IO): count items of size bytes each, at kvm_run + data_offset.
using System.Runtime.InteropServices;

namespace Ringvisor.Kvm.Native;

[StructLayout(LayoutKind.Sequential)]
internal struct KvmRunIo
{
    public const byte DirectionIn = 0;
    public const byte DirectionOut = 1;

    public byte Direction;
    public byte Size;
    public ushort Port;
    public uint Count;
    public ulong DataOffset;
}
