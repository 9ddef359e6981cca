// Linear-address accesses for the interpreter, all through this vCPU's software MMU (Memory/Mmu: page walks, the TLB,
// RAM via host pointers, the vCPU's xAPIC page, MMIO through the machine's bus). Faults are values: every method
// returns false after recording the exception (#PF with CR2 and the MMU's error code; #SS(0)/#GP(0) for a
// non-canonical address), and never writes anything when it fails (the MMU translates every page of a split access
// before the first byte is stored).
using System.Runtime.CompilerServices;
using Ringvisor.Emulator.Exceptions;
using Ringvisor.Emulator.Memory;

namespace Ringvisor.Emulator.Instructions;

public sealed unsafe partial class Cpu
{
    private readonly Mmu _mmu;

    // MMU counters already added to BtStats (the MMU's are cumulative).
    private MmuStatistics _statsReported;

    // Whether the last linear address computed went through SS (selects #SS over #GP for non-canonical addresses).
    private bool _stackSegment;

    /// <summary>This vCPU's MMU (tests, diagnostics, the translator).</summary>
    internal Mmu Mmu => _mmu;

    /// <summary>Drops cached translations: all of them, or (CR3 load semantics) all but global ones.</summary>
    internal void FlushTlb(bool all)
    {
        if (all)
        {
            _mmu.FlushAll();
        }
        else
        {
            _mmu.FlushNonGlobal();
        }
    }

    /// <summary>INVLPG: drops the translations of the page holding <paramref name="la"/> (the whole large page).</summary>
    internal void FlushTlbPage(ulong la) => _mmu.InvalidatePage(la);

    // ---- reads -------------------------------------------------------------------------------------------------

    /// <summary>An explicit read of 1, 2, 4 or 8 bytes with the current privilege (CPL, RFLAGS.AC).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal bool ReadMem(ulong la, int size, out ulong value) => _mmu.TryReadSized(la, size, out value) || MmuFault();

    /// <summary>An implicit supervisor read (descriptor tables, TSS, IDT), allowed from CPL 3 (SDM Vol. 3A §4.6).</summary>
    internal bool ReadSys(ulong la, int size, out ulong value) => _mmu.TryReadSystemSized(la, size, out value) || MmuFault();

    /// <summary>
    /// A read as a user (<paramref name="user"/> = true: the current privilege, which must then be CPL 3) or as an
    /// implicit supervisor access.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal bool ReadLinear(ulong la, int size, bool user, out ulong value) =>
        user ? ReadMem(la, size, out value) : ReadSys(la, size, out value);

    /// <summary>Reads any number of bytes: as a user (current privilege, CPL 3) or as an implicit supervisor access.</summary>
    internal bool ReadBytes(ulong la, Span<byte> data, bool user) =>
        (user ? _mmu.TryReadBytes(la, data) : _mmu.TryReadSystemBytes(la, data)) || MmuFault();

    /// <summary>Reads any number of bytes with the current privilege (x87/SSE operands, FXSAVE images).</summary>
    internal bool ReadData(ulong la, Span<byte> data) => _mmu.TryReadBytes(la, data) || MmuFault();

    // ---- writes ------------------------------------------------------------------------------------------------

    /// <summary>An explicit write of 1, 2, 4 or 8 bytes with the current privilege.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal bool WriteMem(ulong la, int size, ulong value) => _mmu.TryWriteSized(la, size, value) || MmuFault();

    /// <summary>An implicit supervisor write (descriptor accessed/busy bits).</summary>
    internal bool WriteSys(ulong la, int size, ulong value) => _mmu.TryWriteSystemSized(la, size, value) || MmuFault();

    /// <summary>A write as a user (current privilege, CPL 3) or as an implicit supervisor access.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal bool WriteLinear(ulong la, int size, bool user, ulong value) =>
        user ? WriteMem(la, size, value) : WriteSys(la, size, value);

    /// <summary>Writes any number of bytes with the current privilege; a fault leaves memory unchanged.</summary>
    internal bool WriteData(ulong la, ReadOnlySpan<byte> data) => _mmu.TryWriteBytes(la, data) || MmuFault();

    /// <summary>In non-64-bit modes linear addresses wrap at 4 GiB.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private ulong AddressWrap(ulong la) => _longMode ? la : (uint)la;

    // ---- faults and paging state ----------------------------------------------------------------------------

    /// <summary>Turns the MMU's last fault into the guest exception; always false (for `return x || MmuFault()`).</summary>
    [MethodImpl(MethodImplOptions.NoInlining)]
    private bool MmuFault()
    {
        var f = _mmu.LastFault;
        if (f.Kind == MmuFaultKind.PageFault)
        {
            if (!_faultPending)
            {
                Cr2 = f.Address;
            }

            return Fault(ExceptionVector.PageFault, (uint)f.ErrorCode);
        }

        // A non-canonical address through SS is #SS(0), any other #GP(0) (SDM Vol. 3A §6.15, interrupts 12 and 13).
        return Fault(_stackSegment ? ExceptionVector.StackFault : ExceptionVector.GeneralProtection, 0);
    }

    /// <summary>The paging controls as the MMU wants them, with <paramref name="cr0"/>/<paramref name="cr4"/>/<paramref name="efer"/> replaced.</summary>
    private PagingState PagingWith(ulong cr0, ulong cr4, ulong efer) => new()
    {
        Cr0 = cr0,
        Cr3 = Cr3,
        Cr4 = cr4,
        Efer = efer,
        Cpl = _cpl,
        Rflags = _flags,
    };

    /// <summary>Tells the MMU that CPL or RFLAGS.AC may have changed (cheap; never flushes).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private void SyncPrivilege() => _mmu.SetPrivilege(_cpl, _flags);

    /// <summary>Adds the MMU's counters since the last call to BtStats (--stats).</summary>
    private void ReportMmuStats()
    {
        var s = _mmu.Statistics;
        var last = _statsReported;
        _statsReported = s;
        _stats.AddTlb(s.TlbHits - last.TlbHits, s.TlbMisses - last.TlbMisses, s.Flushes - last.Flushes, s.PageInvalidations - last.PageInvalidations);

        // BtStats counts MMIO accesses one by one (as the old per-access path did); they are rare next to instructions.
        for (long n = s.DeviceAccesses - last.DeviceAccesses; n > 0; n--)
        {
            _stats.Mmio();
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static bool IsCanonical(ulong la) => (ulong)(((long)la << 16) >> 16) == la;
}
