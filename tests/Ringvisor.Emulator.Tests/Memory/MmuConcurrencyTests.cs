// Several vCPUs share page tables: accessed/dirty updates must be locked read-modify-writes that never lose another
// CPU's (or the guest's) concurrent changes to the same entries (Intel SDM Vol. 3A §4.8).
using Ringvisor.Emulator.Memory;
using static Ringvisor.Emulator.Tests.Memory.PageTableBuilder;

namespace Ringvisor.Emulator.Tests.Memory;

public sealed class MmuConcurrencyTests : IDisposable
{
    private const int Pages = 256;
    private readonly MmuTestBed _bed = new();
    private readonly List<Exception> _errors = [];

    public void Dispose() => _bed.Dispose();

    /// <summary>What a guest's LOCK XOR does.</summary>
    private static void LockedXor(ref ulong location, ulong bits)
    {
        ulong old;
        do
        {
            old = Volatile.Read(ref location);
        }
        while (Interlocked.CompareExchange(ref location, old ^ bits, old) != old);
    }

    /// <summary>A dedicated thread per vCPU (an MMU belongs to one thread); failures are collected for the test thread.</summary>
    private Thread Start(Action body)
    {
        var t = new Thread(() =>
        {
            try
            {
                body();
            }
            catch (Exception e)
            {
                lock (_errors)
                {
                    _errors.Add(e);
                }
            }
        });
        t.Start();
        return t;
    }

    [Fact]
    public void TryWrite_TwoVcpusSharingUpperLevels_EveryEntryGetsAccessedAndDirty()
    {
        var ptes = new ulong[2 * Pages];
        for (int i = 0; i < ptes.Length; i++)
        {
            ptes[i] = _bed.Tables.Map4K(0x40_0000 + ((ulong)i << 12), 0x80_0000 + ((ulong)i << 12));
        }

        var state = MmuTestBed.LongMode(_bed.Tables.Root);
        using var second = new Mmu(_bed.System);
        Assert.True(_bed.Mmu.SetPagingState(state));
        Assert.True(second.SetPagingState(state));

        void Run(Mmu mmu, int first)
        {
            for (int round = 0; round < 20; round++)
            {
                for (int i = first; i < first + Pages; i++)
                {
                    Assert.True(mmu.TryWrite(0x40_0000 + ((ulong)i << 12), (ulong)round));
                }

                for (int i = first; i < first + Pages; i++)
                {
                    _bed.Tables.Write64(ptes[i], _bed.Tables.Read64(ptes[i]) & ~(A | D)); // the guest clears A/D …
                }

                Assert.True(mmu.WriteCr3(state.Cr3)); // … and flushes, so the next round walks again
            }

            for (int i = first; i < first + Pages; i++)
            {
                Assert.True(mmu.TryWrite(0x40_0000 + ((ulong)i << 12), 1UL));
            }
        }

        var t1 = Start(() => Run(_bed.Mmu, 0));
        var t2 = Start(() => Run(second, Pages));
        t1.Join();
        t2.Join();

        Assert.Empty(_errors);
        foreach (ulong pte in ptes)
        {
            Assert.Equal(A | D, _bed.Tables.Read64(pte) & (A | D));
        }

        for (int level = 2; level <= 4; level++)
        {
            Assert.Equal(A, _bed.Tables.Read64(_bed.Tables.Entry64(0x40_0000, level)) & (A | D));
        }
    }

    [Fact]
    public void TryWrite_GuestTogglingSoftwareBitConcurrently_NoUpdateIsLost()
    {
        // One thread plays a guest CPU toggling the software-available bit 9 with locked XORs while the MMU keeps
        // setting A/D in the same entries; a plain read-modify-write in the MMU would write back stale bit-9 values.
        const ulong Soft = 1UL << 9;
        const int Rounds = 3001;
        var ptes = new ulong[Pages];
        for (int i = 0; i < Pages; i++)
        {
            ptes[i] = _bed.Tables.Map4K(0x40_0000 + ((ulong)i << 12), 0x80_0000 + ((ulong)i << 12));
        }

        _bed.UseLongMode();
        using var running = new ManualResetEventSlim();
        using var stop = new CancellationTokenSource();
        long mmuRounds = 0;
        var mmuThread = Start(() =>
        {
            while (!stop.IsCancellationRequested)
            {
                for (int i = 0; i < Pages; i++)
                {
                    Assert.True(_bed.Mmu.TryWrite(0x40_0000 + ((ulong)i << 12), 0u));
                }

                for (int i = 0; i < Pages; i++)
                {
                    unsafe
                    {
                        // SAFETY: ptes[i] is an 8-byte aligned entry inside guest RAM.
                        Interlocked.And(ref *(ulong*)_bed.Memory.GetHostPointer(ptes[i], 8), ~(A | D));
                    }
                }

                Assert.True(_bed.Mmu.WriteCr3(_bed.Tables.Root));
                Interlocked.Increment(ref mmuRounds);
                running.Set();
            }
        });

        Assert.True(running.Wait(TimeSpan.FromSeconds(30)));
        for (int round = 0; round < Rounds; round++)
        {
            for (int i = 0; i < Pages; i++)
            {
                unsafe
                {
                    // SAFETY: as above.
                    LockedXor(ref *(ulong*)_bed.Memory.GetHostPointer(ptes[i], 8), Soft);
                }
            }
        }

        stop.Cancel();
        mmuThread.Join();
        Assert.Empty(_errors);
        Assert.True(Interlocked.Read(ref mmuRounds) > 1);
        foreach (ulong pte in ptes)
        {
            Assert.Equal(Soft, _bed.Tables.Read64(pte) & Soft); // an odd number of toggles
        }
    }
}
