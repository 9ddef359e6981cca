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
            default:
                Gpr[0] = unchecked((ulong)-KvmEnosys);
                break;
        }
    }
}
