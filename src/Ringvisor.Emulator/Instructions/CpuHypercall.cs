// The VMCALL/VMMCALL hypercall ABI for test guests (docs/hypercalls.md): RAX = function, RBX/RCX = arguments,
// RAX = result. Numbers outside the KVM range so a Linux guest's KVM hypercalls fail cleanly with -KVM_ENOSYS.
using Ringvisor.Core.Vm;

namespace Ringvisor.Emulator.Instructions;

public sealed partial class Cpu
{
    public const ulong HypercallConsoleWrite = 0x5256_0001;
    public const ulong HypercallExit = 0x5256_0002;

    // include/uapi/linux/kvm_para.h: KVM_ENOSYS = 1000, KVM_EPERM = EPERM (1).
    private const long KvmEnosys = 1000;
    private const long KvmEperm = 1;
    private const int MaxConsoleWrite = 64 * 1024;

    // include/uapi/linux/kvm_para.h: KVM_HC_SEND_IPI = 10, KVM_EINVAL = 22.
    private const ulong KvmHcSendIpi = 10;
    private const long KvmEinval = 22;

    // ICR low (SDM Vol. 3A Figure 11-12): vector, delivery mode, level, trigger mode; destination mode and shorthand
    // are not allowed in a PV IPI (KVM's kvm_pv_send_ipi).
    private const ulong IcrSendableBits = 0xC7FF, IcrLogicalOrShorthand = (1 << 11) | (3 << 18);

    private bool _poweredOff;
    private int _exitStatus;

    internal bool PoweredOff => _poweredOff;

    internal int ExitStatus => _exitStatus;

    private void ExecHypercall()
    {
        if (_host.Options.CollectStats)
        {
            _stats.Hypercall();
        }

        if (_cpl != 0)
        {
            Gpr[0] = unchecked((ulong)-KvmEperm);
            return;
        }

        switch (Gpr[0])
        {
            case HypercallConsoleWrite:
                {
                    int len = (int)Math.Min(Gpr[1], MaxConsoleWrite);
                    byte[] buf = new byte[len];
                    if (!ReadBytes(Gpr[3], buf, false))
                    {
                        return;
                    }

                    _host.Options.ConsoleSink?.Invoke(buf);
                    Gpr[0] = (ulong)len;
                    break;
                }

            case HypercallExit:
                _exitStatus = (int)Gpr[3];
                _poweredOff = true;
                _stopBatch = true;
                _host.Control?.RequestStop(VmStopReason.PowerOff, _exitStatus);
                Gpr[0] = 0;
                break;
            case KvmHcSendIpi:
                Gpr[0] = SendPvIpi(Gpr[3], Gpr[1], Gpr[2], Gpr[6]);
                break;
            default:
                Gpr[0] = unchecked((ulong)-KvmEnosys);
                break;
        }
    }

    /// <summary>
    /// KVM_HC_SEND_IPI (Documentation/virt/kvm/x86/hypercalls.rst): RBX/RCX are a 128-bit bitmap of APIC IDs starting
    /// at RDX (64 per register in 64-bit mode, else 32), RSI the ICR low value. Sent through this vCPU's local APIC
    /// one destination at a time; returns how many were sent. IDs above the last vCPU's are ignored, as KVM does.
    /// </summary>
    private ulong SendPvIpi(ulong bitmapLow, ulong bitmapHigh, ulong min, ulong icr)
    {
        if ((icr & IcrLogicalOrShorthand) != 0)
        {
            return unchecked((ulong)-KvmEinval);
        }

        if (_apic is null)
        {
            return unchecked((ulong)-KvmEnosys);
        }

        int clusterSize = _bitness == 64 ? 64 : 32;
        ulong maxId = (ulong)Math.Max(_host.VcpuCount - 1, 0);
        ulong sent = 0;
        Span<byte> b = stackalloc byte[4];
        for (int half = 0; half < 2; half++)
        {
            ulong bitmap = half == 0 ? bitmapLow : bitmapHigh;
            ulong first = min + (ulong)(half * clusterSize);
            if (first < min || first > maxId)
            {
                // Past the last APIC ID (or wrapped around): nothing to send.
                break;
            }

            for (int i = 0; i < clusterSize && first + (ulong)i <= maxId; i++)
            {
                if ((bitmap & (1UL << i)) == 0)
                {
                    continue;
                }

                System.Buffers.Binary.BinaryPrimitives.WriteUInt32LittleEndian(b, (uint)(first + (ulong)i) << 24);
                _apic.Write(0x310, b); // ICR high: destination
                System.Buffers.Binary.BinaryPrimitives.WriteUInt32LittleEndian(b, (uint)(icr & IcrSendableBits));
                _apic.Write(0x300, b); // ICR low: sends
                sent++;
            }
        }

        return sent;
    }
}
