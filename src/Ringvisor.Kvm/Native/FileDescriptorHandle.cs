// Ownership of one Linux file descriptor (/dev/kvm, a VM, a vCPU, an eventfd): closed exactly once.
using System.Runtime.InteropServices;

namespace Ringvisor.Kvm.Native;

internal sealed class FileDescriptorHandle : SafeHandle
{
    public FileDescriptorHandle(int fd)
        : base(invalidHandleValue: -1, ownsHandle: true)
    {
        SetHandle(fd);
    }

    public override bool IsInvalid => handle < 0;

    /// <summary>The raw descriptor, for ioctl calls made while the owner is known to be alive.</summary>
    public int Fd => (int)handle;

    protected override bool ReleaseHandle() => LibC.close((int)handle) == 0;
}
