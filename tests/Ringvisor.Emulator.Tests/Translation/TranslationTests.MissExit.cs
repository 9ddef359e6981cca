// A load or store whose inline TLB test misses (TLB miss, MMIO, an access straddling two pages) leaves the unit with
// the state from before the instruction and RIP at it; the interpreter runs the instruction once, and the dispatcher
// goes on with the next unit. A unit that keeps doing so is compiled again with accessor calls (demotion).
using Ringvisor.Emulator.Tests.Interpreter;
using Ringvisor.Emulator.Translation;
using static Iced.Intel.AssemblerRegisters;

namespace Ringvisor.Emulator.Tests.Translation;

public sealed partial class TranslationTests
{
    private const ulong MmioBase = 0x100_0000; // just above the harness's 16 MiB of RAM

    [Fact]
    public void LoadsMissingTheTlb_RunOnceInTheInterpreter_MatchInterpreter()
    {
        // Per pass: an MMIO read (a device counting its reads), a 4-byte read straddling two RAM pages, and an MMIO read
        // between a CMP and the JB that reads its flags (the exit must commit the CMP's deferred flag state).
        const int Passes = 40;
        var reads = new List<int>();
        var stats = RunBoth(
            a =>
            {
                var loop = a.CreateLabel();
                a.mov(rsi, MmioBase);
                a.mov(rdi, DataA + 0xFFE);
                a.mov(ecx, Passes);
                a.xor(ebx, ebx);
                a.Label(ref loop);
                a.mov(eax, __dword_ptr[rsi]);
                a.add(ebx, eax);
                a.mov(edx, __dword_ptr[rdi]);
                a.add(ebx, edx);
                a.imul(ebx, ebx, 3);
                var skip = a.CreateLabel();
                a.cmp(ecx, Passes / 2);
                a.mov(eax, __dword_ptr[rsi + 4]);
                a.jb(skip);
                a.add(ebx, 1000);
                a.Label(ref skip);
                a.lea(ebx, __dword_ptr[rbx + rax]);
                a.dec(ecx);
                a.jnz(loop);
                a.hlt();
            },
            g =>
            {
                MapCountingDevice(g, reads, null);
                g.Write(DataA + 0xFFE, [0x11, 0x22, 0x33, 0x44]);
            });

        // Every MMIO read happened exactly once on both tiers (the sum in RBX, compared by RunBoth, depends on it).
        Assert.Equal([2 * Passes, 2 * Passes], reads);
        Assert.True(stats.TranslationExits((int)TranslationExit.Fallback) >= 3 * (Passes - 1), stats.Format());
    }

    [Fact]
    public void LoadMissingOnEveryPass_RegionCompiledAgainWithCalls()
    {
        // MMIO read in a hot loop: every pass would leave the unit. After DemoteAfterFallbacks of them the region is
        // compiled again with its loads calling the accessor, and the rest of the passes stay in the unit.
        const int Passes = 3 * Ringvisor.Emulator.Instructions.Cpu.DemoteAfterFallbacks;
        var stats = RunBoth(
            a =>
            {
                var loop = a.CreateLabel();
                a.mov(rsi, MmioBase);
                a.mov(ecx, Passes);
                a.xor(ebx, ebx);
                a.Label(ref loop);
                a.mov(eax, __dword_ptr[rsi]);
                a.add(ebx, eax);
                a.dec(ecx);
                a.jnz(loop);
                a.hlt();
            },
            g => MapCountingDevice(g, null, null));

        // The region entered at the loop's start and the one entered after the interpreted load (each holds the
        // load) are demoted in turn; after that no pass leaves its unit.
        const int Demote = Ringvisor.Emulator.Instructions.Cpu.DemoteAfterFallbacks;
        Assert.InRange(stats.UnitsDemoted, 1, 2);
        long fallbacks = stats.TranslationExits((int)TranslationExit.Fallback);
        Assert.InRange(fallbacks, Demote, (stats.UnitsDemoted * Demote) + 16);
    }

    [Fact]
    public void StoresMissingTheTlb_RunOnceInTheInterpreter_MatchInterpreter()
    {
        // Per pass: a plain store to MMIO (the device counts the writes), a read-modify-write of a dword straddling
        // two RAM pages, and a PUSH/POP pair. Every MMIO write happens once on both tiers.
        const int Passes = 40;
        var writes = new List<int>();
        var stats = RunBoth(
            a =>
            {
                var loop = a.CreateLabel();
                a.mov(rsi, MmioBase);
                a.mov(rdi, DataA + 0xFFE);
                a.mov(ecx, Passes);
                a.Label(ref loop);
                a.mov(__dword_ptr[rsi + 8], ecx);
                a.add(__dword_ptr[rdi], ecx);
                a.push(rcx);
                a.pop(rdx);
                a.dec(ecx);
                a.jnz(loop);
                a.mov(ebx, __dword_ptr[rdi]);
                a.hlt();
            },
            g => MapCountingDevice(g, null, writes),
            compareAt: [DataA + 0xFF8, DataA + 0x1000]);

        Assert.Equal([Passes, Passes], writes);
        Assert.True(stats.TranslationExits((int)TranslationExit.Fallback) >= 2 * (Passes - 1), stats.Format());
    }

    [Fact]
    public void StoreMissingOnEveryPass_RegionCompiledAgainWithCalls()
    {
        // An MMIO store in a hot loop: demoted as a missing load is, then every write goes through the accessor call,
        // still once per pass.
        const int Passes = 3 * Ringvisor.Emulator.Instructions.Cpu.DemoteAfterFallbacks;
        var writes = new List<int>();
        var stats = RunBoth(
            a =>
            {
                var loop = a.CreateLabel();
                a.mov(rsi, MmioBase);
                a.mov(ecx, Passes);
                a.Label(ref loop);
                a.mov(__dword_ptr[rsi], ecx);
                a.dec(ecx);
                a.jnz(loop);
                a.hlt();
            },
            g => MapCountingDevice(g, null, writes));

        const int Demote = Ringvisor.Emulator.Instructions.Cpu.DemoteAfterFallbacks;
        Assert.Equal([Passes, Passes], writes);
        Assert.True(stats.UnitsDemoted is >= 1 and <= 2, stats.Format());
        Assert.InRange(stats.TranslationExits((int)TranslationExit.Fallback), Demote, (stats.UnitsDemoted * Demote) + 16);
    }

    /// <summary>Maps a <see cref="CountingDevice"/> at <see cref="MmioBase"/> (a ninth 2 MiB page, beyond RAM) and
    /// appends this harness's final read and write counts to <paramref name="reads"/> and <paramref name="writes"/>.</summary>
    private static void MapCountingDevice(GuestHarness g, List<int>? reads, List<int>? writes)
    {
        g.Write64(GuestHarness.Pd + (8 * 8), (8UL << 21) | 0x87);
        var device = new CountingDevice();
        g.Mmio.Register(MmioBase, 0x1000, device, "counter");
        if (reads is not null)
        {
            reads.Add(0);
            int index = reads.Count - 1;
            device.OnRead = n => reads[index] = n;
        }

        if (writes is not null)
        {
            writes.Add(0);
            int index = writes.Count - 1;
            device.OnWrite = n => writes[index] = n;
        }
    }

    /// <summary>Each 4-byte read returns how many reads came before it.</summary>
    private sealed class CountingDevice : Ringvisor.Core.Bus.IBusDevice
    {
        private int _reads;

        public Action<int>? OnRead { get; set; }

        public void Read(ulong offset, Span<byte> data)
        {
            data.Clear();
            BitConverter.TryWriteBytes(data, _reads++);
            OnRead?.Invoke(_reads);
        }

        private int _writes;

        public Action<int>? OnWrite { get; set; }

        public void Write(ulong offset, ReadOnlySpan<byte> data) => OnWrite?.Invoke(++_writes);
    }
}
