// Decodes kvm_run after KVM_RUN returns: PIO and MMIO exits are dispatched to the machine's buses in place (the
// data lives in the shared page, so nothing is copied or allocated), every other exit becomes a VcpuExit.
// Layouts: include/uapi/linux/kvm.h struct kvm_run; semantics: Documentation/virt/kvm/api.rst §5 "The kvm_run
// structure". Works on any span holding a kvm_run image so it can be tested without /dev/kvm.
using System.Runtime.InteropServices;
using System.Text;
using Ringvisor.Core.Bus;
using Ringvisor.Core.Cpu;
using Ringvisor.Kvm.Native;

namespace Ringvisor.Kvm;

internal static class KvmExitDispatcher
{
    /// <summary>Handles KVM_EXIT_IO: <c>count</c> items of <c>size</c> bytes at <c>data_offset</c>, in or out.</summary>
    /// <returns>False when the exit describes an impossible access (size not 1/2/4, data outside the page).</returns>
    public static bool DispatchIo(Span<byte> runPage, IoBus pio)
    {
        ref readonly KvmRunIo io = ref MemoryMarshal.AsRef<KvmRun>(runPage).Io;
        int size = io.Size;
        uint count = io.Count;
        ulong offset = io.DataOffset;
        if (size is not (1 or 2 or 4) || count == 0 || offset > (ulong)runPage.Length ||
            (ulong)size * count > (ulong)runPage.Length - offset)
        {
            return false;
        }

        ushort port = io.Port;
        var data = runPage.Slice((int)offset, size * (int)count);
        if (io.Direction == KvmRunIo.DirectionOut)
        {
            for (int i = 0; i < data.Length; i += size)
            {
                pio.Write(port, data.Slice(i, size));
            }
        }
        else
        {
            for (int i = 0; i < data.Length; i += size)
            {
                pio.Read(port, data.Slice(i, size));
            }
        }

        return true;
    }

    /// <summary>Handles KVM_EXIT_MMIO: one access of 1..8 bytes; a read's result goes back into mmio.data.</summary>
    /// <returns>False when len is not 1..8.</returns>
    public static bool DispatchMmio(Span<byte> runPage, IoBus mmio)
    {
        ref KvmRun run = ref MemoryMarshal.AsRef<KvmRun>(runPage);
        uint len = run.Mmio.Len;
        if (len is 0 or > 8)
        {
            return false;
        }

        // kvm_run.mmio.data sits 8 bytes into the exit union (after phys_addr).
        var data = runPage.Slice(KvmRun.ExitUnionOffset + sizeof(ulong), (int)len);
        if (run.Mmio.IsWrite != 0)
        {
            mmio.Write(run.Mmio.PhysAddr, data);
        }
        else
        {
            mmio.Read(run.Mmio.PhysAddr, data);
        }

        return true;
    }

    /// <summary>The VcpuExit for an exit that ends Run (anything but IO, MMIO and interruptions).</summary>
    public static unsafe VcpuExit Describe(ReadOnlySpan<byte> runPage)
    {
        ref readonly KvmRun run = ref MemoryMarshal.AsRef<KvmRun>(runPage);
        var reason = (KvmExitReason)run.ExitReason;
        switch (reason)
        {
            case KvmExitReason.Hlt:
                return new VcpuExit(VcpuExitReason.Halted);
            case KvmExitReason.Shutdown:
                return new VcpuExit(VcpuExitReason.Shutdown, "KVM_EXIT_SHUTDOWN");
            case KvmExitReason.SystemEvent:
                var type = (KvmSystemEventType)run.SystemEvent.Type;
                return type switch
                {
                    KvmSystemEventType.Shutdown => new VcpuExit(VcpuExitReason.PowerOff, "KVM_SYSTEM_EVENT_SHUTDOWN"),
                    KvmSystemEventType.Reset => new VcpuExit(VcpuExitReason.Reset, "KVM_SYSTEM_EVENT_RESET"),
                    KvmSystemEventType.Crash => new VcpuExit(VcpuExitReason.Error, "KVM_EXIT_SYSTEM_EVENT: the guest reported a crash (KVM_SYSTEM_EVENT_CRASH)"),
                    _ => new VcpuExit(VcpuExitReason.Error, $"KVM_EXIT_SYSTEM_EVENT with unhandled type {(uint)type} ({type})"),
                };
            case KvmExitReason.FailEntry:
                return new VcpuExit(VcpuExitReason.Error,
                    $"KVM_EXIT_FAIL_ENTRY: hardware entry failure reason 0x{run.FailEntry.HardwareEntryFailureReason:X} on host CPU {run.FailEntry.Cpu}");
            case KvmExitReason.InternalError:
            {
                var sb = new StringBuilder();
                uint sub = run.Internal.Suberror;
                sb.Append("KVM_EXIT_INTERNAL_ERROR: suberror ").Append(sub).Append(" (").Append(SuberrorName(sub)).Append(')');
                uint n = Math.Min(run.Internal.Ndata, KvmRunInternal.MaxData);
                if (n > 0)
                {
                    sb.Append(", data [");
                    fixed (ulong* d = run.Internal.Data)
                    {
                        for (uint i = 0; i < n; i++)
                        {
                            sb.Append(i == 0 ? "" : " ").Append("0x").Append(d[i].ToString("X"));
                        }
                    }

                    sb.Append(']');
                    fixed (ulong* d = run.Internal.Data)
                    {
                        AppendInstructionBytes(sb, sub, new ReadOnlySpan<ulong>(d, (int)n));
                    }
                }

                return new VcpuExit(VcpuExitReason.Error, sb.ToString());
            }

            default:
                string name = Enum.IsDefined(reason) ? $"KVM_EXIT_{reason}" : "unknown";
                return new VcpuExit(VcpuExitReason.Error, $"unhandled KVM exit reason {(uint)reason} ({name})");
        }
    }

    /// <summary>
    /// An emulation failure with KVM_INTERNAL_ERROR_EMULATION_FLAG_INSTRUCTION_BYTES (data[0] bit 0) carries the
    /// instruction: data[1] byte 0 is its length (up to 15), the bytes follow (api.rst, struct emulation_failure).
    /// Printed as hex so the failing instruction can be identified from the message alone.
    /// </summary>
    internal static void AppendInstructionBytes(StringBuilder sb, uint suberror, ReadOnlySpan<ulong> data)
    {
        const ulong flagInstructionBytes = 1;
        if ((KvmInternalError)suberror != KvmInternalError.Emulation || data.Length < 2 || (data[0] & flagInstructionBytes) == 0)
        {
            return;
        }

        var bytes = System.Runtime.InteropServices.MemoryMarshal.AsBytes(data[1..]);
        int length = Math.Min(bytes[0], Math.Min(15, bytes.Length - 1));
        if (length <= 0)
        {
            return;
        }

        sb.Append(", instruction bytes ").Append(Convert.ToHexString(bytes.Slice(1, length)));
    }

    private static string SuberrorName(uint suberror) => (KvmInternalError)suberror switch
    {
        KvmInternalError.Emulation => "emulation failure",
        KvmInternalError.SimultaneousException => "exception while delivering an exception",
        KvmInternalError.DeliveryEvent => "event delivery failed",
        KvmInternalError.UnexpectedExitReason => "unexpected hardware exit reason",
        _ => "unknown suberror",
    };
}
