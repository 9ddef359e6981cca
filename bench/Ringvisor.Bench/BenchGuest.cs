// The flat 64-bit guest the in-process engine benchmarks (mips, jit) run: the first 1 GiB identity-mapped with one
// 1 GiB page, and a long-mode CPU state (flat CS/DS, paging, PAE, LME/LMA) starting at a given RIP and RSP.
using Ringvisor.Core.Cpu;
using Ringvisor.Core.Memory;

namespace Ringvisor.Bench;

internal static class BenchGuest
{
    public const ulong Pml4 = 0x1000, Pdpt = 0x2000;

    /// <summary>PML4[0] -> PDPT, PDPT[0] = 1 GiB page at 0 (present, writable, user, PS).</summary>
    public static void IdentityMap1G(GuestMemory mem)
    {
        mem.TryWrite(Pml4, Pdpt | 0x7);
        mem.TryWrite(Pdpt, 0x0UL | 0x87);
    }

    public static CpuState LongModeState(ulong rip, ulong rsp)
    {
        var s = new CpuState();
        s.Registers.Rip = rip;
        s.Registers.Rflags = CpuRegisters.RflagsReserved;
        s.Registers.Rsp = rsp;
        s.System.Cs = SegmentRegister.Flat(0x8, code: true, longMode: true);
        var data = SegmentRegister.Flat(0x10, code: false);
        s.System.Ds = s.System.Es = s.System.Ss = s.System.Fs = s.System.Gs = data;
        s.System.Cr0 = SystemRegisters.Cr0Pe | SystemRegisters.Cr0Pg | SystemRegisters.Cr0Et | SystemRegisters.Cr0Ne;
        s.System.Cr3 = Pml4;
        s.System.Cr4 = SystemRegisters.Cr4Pae;
        s.System.Efer = SystemRegisters.EferLme | SystemRegisters.EferLma;
        return s;
    }
}
