// struct kvm_run (include/uapi/linux/kvm.h): the page(s) shared with the kernel through mmap on a vCPU fd.
// Only the fixed header and the exit union members Ringvisor reads are declared; the union lives at offset 32.
using System.Runtime.InteropServices;

namespace Ringvisor.Kvm.Native;

[StructLayout(LayoutKind.Explicit, Size = Size)]
internal struct KvmRun
{
    public const int Size = 2352;
    public const int ExitUnionOffset = 32;

    [FieldOffset(0)]
    public byte RequestInterruptWindow;

    /// <summary>Polled once when KVM_RUN starts: non-zero makes it return -EINTR at once (KVM_CAP_IMMEDIATE_EXIT).</summary>
    [FieldOffset(1)]
    public byte ImmediateExit;

    [FieldOffset(8)]
    public uint ExitReason;

    [FieldOffset(12)]
    public byte ReadyForInterruptInjection;

    [FieldOffset(13)]
    public byte IfFlag;

    [FieldOffset(14)]
    public ushort Flags;

    [FieldOffset(16)]
    public ulong Cr8;

    [FieldOffset(24)]
    public ulong ApicBase;

    [FieldOffset(ExitUnionOffset)]
    public KvmRunIo Io;

    [FieldOffset(ExitUnionOffset)]
    public KvmRunMmio Mmio;

    [FieldOffset(ExitUnionOffset)]
    public KvmRunFailEntry FailEntry;

    [FieldOffset(ExitUnionOffset)]
    public KvmRunInternal Internal;

    [FieldOffset(ExitUnionOffset)]
    public KvmRunSystemEvent SystemEvent;

    [FieldOffset(288)]
    public ulong KvmValidRegs;

    [FieldOffset(296)]
    public ulong KvmDirtyRegs;
}
