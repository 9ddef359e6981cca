// The real CPU (through KVM) as the oracle for the MMU (design principle 5): the same page tables are built in two
// guest memories; one access runs in a KVM guest (at CPL 3 natively on this kind of host, or at CPL 0 where the
// host emulates it) with a #PF handler that records the error code and CR2, and the same access goes through the
// MMU. Faults, error codes, CR2 and the accessed/dirty bits left in the target's four paging-structure entries
// must agree. A/D bits are compared only for accesses that succeed: after a fault the SDM leaves them open.
using Iced.Intel;
using Ringvisor.Core.Bus;
using Ringvisor.Core.Cpu;
using Ringvisor.Core.Memory;
using Ringvisor.Emulator.Memory;
using Ringvisor.TestSupport;
using static Iced.Intel.AssemblerRegisters;
using static Ringvisor.Emulator.Tests.Memory.PageTableBuilder;

namespace Ringvisor.Emulator.Tests.Memory;

public class MmuKvmDifferentialTests
{
    // Guest-physical layout (all below 1 MiB; page tables from 1 MiB, target frames from 2 MiB).
    private const ulong Gdt = 0x1000;
    private const ulong Tss = 0x1100;
    private const ulong Idt = 0x2000;
    private const ulong FaultHandler = 0x3000;
    private const ulong OtherHandler = 0x3100;
    private const ulong KernelCode = 0x3200;
    private const ulong UserCode = 0x4000;
    private const ulong UserStackTop = 0x6000;
    private const ulong KernelStackTop = 0x9000;
    private const ulong Result = KvmOracle.Result;
    private const ulong Frame4K = 0x20_0000;
    private const ulong Frame2M = 0x40_0000;

    /// <summary>PML4 index 1, PDPT index 1, PD index 1, PT index 3: its own entries at every level.</summary>
    private const ulong Target = 0x80_4020_3000;
    private const ulong Offset = 0x10;

    private const ushort KernelCs = 0x08, KernelDs = 0x10, UserDs = 0x18, UserCs = 0x20, TssSel = 0x28;

    public enum Shape
    {
        Page4K,
        Page2M,
        Page1G,
    }

    /// <summary>(shape, leaf flags, flags of the non-leaf entries above, CPL, CR0.WP, access, extra CR4 bits, RFLAGS.AC).</summary>
    public static TheoryData<Shape, ulong, ulong, int, bool, MemoryAccessKind, ulong, bool> Cases()
    {
        var data = new TheoryData<Shape, ulong, ulong, int, bool, MemoryAccessKind, ulong, bool>();
        var kinds = new[] { MemoryAccessKind.Read, MemoryAccessKind.Write, MemoryAccessKind.Execute };
        foreach (var kind in kinds)
        {
            // Every leaf right combination at CPL 3, plus not present.
            for (int bits = 0; bits < 8; bits++)
            {
                ulong leaf = P | ((bits & 1) != 0 ? US : 0) | ((bits & 2) != 0 ? RW : 0) | ((bits & 4) != 0 ? XD : 0);
                data.Add(Shape.Page4K, leaf, Upper, 3, true, kind, 0, false);
            }

            data.Add(Shape.Page4K, RW | US, Upper, 3, true, kind, 0, false); // not present
            data.Add(Shape.Page4K, P | RW | US, P | RW, 3, true, kind, 0, false); // supervisor above
            data.Add(Shape.Page4K, P | RW | US, P | US, 3, true, kind, 0, false); // read-only above
            data.Add(Shape.Page4K, P | RW | US, Upper | XD, 3, true, kind, 0, false); // XD above
            data.Add(Shape.Page4K, P | RW | US | (1UL << 45), Upper, 3, true, kind, 0, false); // above MAXPHYADDR (40)
            data.Add(Shape.Page4K, P | RW | US, Upper | (1UL << 51), 3, true, kind, 0, false); // reserved in the upper levels
            data.Add(Shape.Page2M, P | RW | US, Upper, 3, true, kind, 0, false);
            data.Add(Shape.Page2M, P | RW | US | (1UL << 13), Upper, 3, true, kind, 0, false); // reserved in a 2 MiB PDE
            data.Add(Shape.Page1G, P | RW | US, Upper, 3, true, kind, 0, false);
            data.Add(Shape.Page1G, P | US | D, Upper, 3, true, kind, 0, false);
        }

        // A few supervisor cases (the host emulates CPL-0 code: keep them few): CR0.WP and user pages at CPL 0.
        data.Add(Shape.Page4K, P | US, Upper, 0, true, MemoryAccessKind.Write, 0, false);
        data.Add(Shape.Page4K, P | US, Upper, 0, false, MemoryAccessKind.Write, 0, false);
        data.Add(Shape.Page4K, P, Upper, 0, true, MemoryAccessKind.Write, 0, false);
        data.Add(Shape.Page4K, P | RW | US, Upper, 0, true, MemoryAccessKind.Read, 0, false);

        // SMEP and SMAP (with RFLAGS.AC) at CPL 0.
        const ulong smep = PagingState.Cr4Smep, smap = PagingState.Cr4Smap;
        data.Add(Shape.Page4K, P | RW | US, Upper, 0, true, MemoryAccessKind.Execute, smep, false);
        data.Add(Shape.Page4K, P | RW, Upper, 0, true, MemoryAccessKind.Execute, smep, false);
        data.Add(Shape.Page4K, P | RW | US, Upper, 0, true, MemoryAccessKind.Read, smap, false);
        data.Add(Shape.Page4K, P | RW | US, Upper, 0, true, MemoryAccessKind.Read, smap, true);
        data.Add(Shape.Page4K, P | RW | US, Upper, 0, true, MemoryAccessKind.Write, smap, false);
        data.Add(Shape.Page4K, P | US, Upper, 0, true, MemoryAccessKind.Write, smap, true);
        data.Add(Shape.Page4K, P | US, Upper, 0, false, MemoryAccessKind.Write, smap, true);
        data.Add(Shape.Page4K, P | RW, Upper, 0, true, MemoryAccessKind.Write, smap | smep, false);
        return data;
    }

    [KvmTheory]
    [MemberData(nameof(Cases))]
    public void TryTranslate_SameTablesAsKvmGuest_SameFaultAndAccessedDirtyBits(
        Shape shape, ulong leaf, ulong upper, int cpl, bool wp, MemoryAccessKind kind, ulong cr4, bool ac)
    {
        using var kvmMemory = GuestMemory.Create(16UL << 20);
        using var mmuMemory = GuestMemory.Create(16UL << 20);
        ulong[] kvmEntries = Build(kvmMemory, shape, leaf, upper, kind, cpl, out ulong root, out ulong targetPhysical);
        ulong[] mmuEntries = Build(mmuMemory, shape, leaf, upper, kind, cpl, out _, out _);

        // The oracle.
        var (status, errorCode, cr2) = RunOnKvm(kvmMemory, root, cpl, wp, cr4, ac);
        Assert.True(status is 0 or 1, $"guest ended with status {status:X} (2 = an exception other than #PF)");

        // The MMU, configured like the guest CPU model (which may lack 1 GiB pages: CPUID 80000001H EDX[26]).
        using var mmu = new Mmu(mmuMemory, new IoBus("mmio", 1UL << 52)) { Supports1GbPages = s_guestHas1GbPages.Value };
        Assert.True(mmu.SetPagingState(new PagingState
        {
            Cr0 = ControlCr0(wp),
            Cr3 = root,
            Cr4 = SystemRegisters.Cr4Pae | cr4,
            Efer = PagingState.EferLma | PagingState.EferNxe,
            Cpl = cpl,
            Rflags = 2 | (ac ? PagingState.RflagsAc : 0),
        }));
        bool ok = mmu.TryTranslate(Target + Offset, kind, out ulong physical);

        Assert.Equal(status == 0, ok);
        if (ok)
        {
            Assert.Equal(targetPhysical, physical);
            for (int i = 0; i < kvmEntries.Length; i++)
            {
                ulong k = Read64(kvmMemory, kvmEntries[i]) & (A | D);
                ulong m = Read64(mmuMemory, mmuEntries[i]) & (A | D);
                Assert.True(k == m, $"entry {i} (0 = PML4E): A/D on KVM {k:X}, MMU {m:X}");
            }
        }
        else
        {
            Assert.Equal(MmuFaultKind.PageFault, mmu.LastFault.Kind);
            Assert.Equal((PageFaultErrorCode)errorCode, mmu.LastFault.ErrorCode);
            Assert.Equal(cr2, mmu.LastFault.Address);
        }
    }

    /// <summary>Seeds for the random cases (fixed, so CI runs the same tables every time).</summary>
    public static TheoryData<int> RandomSeeds()
    {
        var data = new TheoryData<int>();
        for (int seed = 1; seed <= 64; seed++)
        {
            data.Add(seed);
        }

        return data;
    }

    [KvmTheory]
    [MemberData(nameof(RandomSeeds))]
    public void TryTranslate_RandomRightsAtEveryLevel_SameAsKvm(int seed)
    {
        var rng = new Random(seed);
        int pick = rng.Next(6);
        var shape = pick < 3 ? Shape.Page4K : pick < 5 ? Shape.Page2M : Shape.Page1G;
        var kind = (MemoryAccessKind)rng.Next(3);
        int cpl = rng.Next(8) == 0 ? 0 : 3; // CPL 0 is emulated by the host here: keep it rare
        bool wp = rng.Next(2) == 0;
        int levels = shape switch { Shape.Page4K => 4, Shape.Page2M => 3, _ => 2 };
        var flags = new ulong[levels];
        for (int i = 0; i < levels; i++)
        {
            // Weighted so that about half of the walks succeed and the A/D comparison has work to do.
            flags[i] = (rng.Next(24) != 0 ? P : 0) | (rng.Next(10) != 0 ? RW : 0) | (rng.Next(12) != 0 ? US : 0) |
                       (rng.Next(10) == 0 ? XD : 0) | (rng.Next(3) == 0 ? A : 0) | (i == levels - 1 && rng.Next(3) == 0 ? D : 0);
            if (rng.Next(40) == 0)
            {
                flags[i] |= 1UL << (40 + rng.Next(12)); // a reserved address bit (MAXPHYADDR 40)
            }
        }

        using var kvmMemory = GuestMemory.Create(16UL << 20);
        using var mmuMemory = GuestMemory.Create(16UL << 20);
        ulong[] kvmEntries = Build(kvmMemory, shape, flags[^1], Upper, kind, cpl, out ulong root, out ulong targetPhysical);
        ulong[] mmuEntries = Build(mmuMemory, shape, flags[^1], Upper, kind, cpl, out _, out _);
        for (int i = 0; i < levels - 1; i++)
        {
            // Replace the non-leaf entries' flags, keeping the table address.
            SetFlags(kvmMemory, kvmEntries[i], flags[i]);
            SetFlags(mmuMemory, mmuEntries[i], flags[i]);
        }

        var (status, errorCode, cr2) = RunOnKvm(kvmMemory, root, cpl, wp, 0, false);
        Assert.True(status is 0 or 1, $"guest ended with status {status:X} (2 = an exception other than #PF)");

        using var mmu = new Mmu(mmuMemory, new IoBus("mmio", 1UL << 52)) { Supports1GbPages = s_guestHas1GbPages.Value };
        Assert.True(mmu.SetPagingState(new PagingState
        {
            Cr0 = ControlCr0(wp),
            Cr3 = root,
            Cr4 = SystemRegisters.Cr4Pae,
            Efer = PagingState.EferLma | PagingState.EferNxe,
            Cpl = cpl,
            Rflags = 2,
        }));
        bool ok = mmu.TryTranslate(Target + Offset, kind, out ulong physical);
        string what = $"{shape} {kind} CPL{cpl} WP={wp} flags [{string.Join(", ", flags.Select(f => f.ToString("X")))}]";

        Assert.True((status == 0) == ok, $"{what}: KVM status {status} error {errorCode:X}, MMU ok={ok} {mmu.LastFault}");
        if (ok)
        {
            Assert.Equal(targetPhysical, physical);
            for (int i = 0; i < kvmEntries.Length; i++)
            {
                ulong k = Read64(kvmMemory, kvmEntries[i]) & (A | D);
                ulong m = Read64(mmuMemory, mmuEntries[i]) & (A | D);
                Assert.True(k == m, $"{what}: entry {i} A/D on KVM {k:X}, MMU {m:X}");
            }
        }
        else
        {
            Assert.True((PageFaultErrorCode)errorCode == mmu.LastFault.ErrorCode, $"{what}: KVM error {errorCode:X}, MMU {mmu.LastFault}");
            Assert.Equal(cr2, mmu.LastFault.Address);
        }
    }

    private static void SetFlags(GuestMemory memory, ulong entry, ulong flags) =>
        Write64(memory, entry, (Read64(memory, entry) & 0x0000_00FF_FFFF_F000) | flags);

    /// <summary>Whether the KVM guest's CPU model maps 1 GiB pages: a plain user read through a 1 GiB page succeeds.</summary>
    private static readonly Lazy<bool> s_guestHas1GbPages = new(() =>
    {
        using var memory = GuestMemory.Create(16UL << 20);
        Build(memory, Shape.Page1G, P | RW | US, Upper, MemoryAccessKind.Read, 3, out ulong root, out _);
        var (status, errorCode, _) = RunOnKvm(memory, root, 3, true, 0, false);
        return status == 0 || (errorCode & (uint)PageFaultErrorCode.ReservedBit) == 0;
    });

    private static ulong ControlCr0(bool wp) =>
        SystemRegisters.Cr0Pe | SystemRegisters.Cr0Mp | SystemRegisters.Cr0Et | SystemRegisters.Cr0Ne |
        SystemRegisters.Cr0Pg | (wp ? SystemRegisters.Cr0Wp : 0);

    /// <summary>Writes the scenario; returns the physical addresses of the target's entries, top level first.</summary>
    private static ulong[] Build(GuestMemory memory, Shape shape, ulong leaf, ulong upper, MemoryAccessKind kind, int cpl,
        out ulong root, out ulong targetPhysical)
    {
        var t = new PageTableBuilder(memory);
        root = t.Root;

        // Scaffolding, identity-mapped with 4 KiB pages: supervisor data/code, user code and stack.
        for (ulong page = Gdt; page <= Result; page += 0x1000)
        {
            ulong flags = page switch
            {
                UserCode => P | US,
                UserStackTop - 0x1000 => P | RW | US,
                _ => P | RW,
            };
            t.Map4K(page, page, flags | A | D);
        }

        WriteGdtTssIdt(memory);
        Load(memory, FaultHandler, Assemble(FaultHandler, a =>
        {
            a.pop(rax); // the error code
            a.mov(__qword_ptr[Result], rax);
            a.mov(rax, cr2);
            a.mov(__qword_ptr[Result + 8], rax);
            a.mov(al, 1);
            a.@out(KvmExitPort.Port, al);
            a.hlt();
        }));
        Load(memory, OtherHandler, Assemble(OtherHandler, a =>
        {
            a.mov(al, 2);
            a.@out(KvmExitPort.Port, al);
            a.hlt();
        }));

        // The access under test, then "success" (status 0).
        byte[] access = Assemble(cpl == 3 ? UserCode : KernelCode, a =>
        {
            a.mov(rbx, Target + Offset);
            switch (kind)
            {
                case MemoryAccessKind.Read: a.mov(rax, __qword_ptr[rbx]); break;
                case MemoryAccessKind.Write: a.mov(__qword_ptr[rbx], rax); break;
                default: a.jmp(rbx); break;
            }

            a.mov(al, 0);
            a.@out(KvmExitPort.Port, al);
            a.hlt();
        });
        Load(memory, cpl == 3 ? UserCode : KernelCode, access);

        ulong[] entries;
        switch (shape)
        {
            case Shape.Page4K:
                t.Map4K(Target, Frame4K, leaf, upper);
                entries = [t.Entry64(Target, 4), t.Entry64(Target, 3), t.Entry64(Target, 2), t.Entry64(Target, 1)];
                targetPhysical = Frame4K + Offset;
                break;
            case Shape.Page2M:
                t.Map2M(Target & ~0x1F_FFFFUL, Frame2M, leaf, upper);
                entries = [t.Entry64(Target, 4), t.Entry64(Target, 3), t.Entry64(Target, 2)];
                targetPhysical = Frame2M + (Target & 0x1F_FFFF) + Offset;
                break;
            default:
                t.Map1G(Target & ~0x3FFF_FFFFUL, 0, leaf, upper);
                entries = [t.Entry64(Target, 4), t.Entry64(Target, 3)];
                targetPhysical = (Target & 0x3FFF_FFFF) + Offset;
                break;
        }

        // For fetches: code at the target that reports success.
        Load(memory, targetPhysical, Assemble(Target + Offset, a =>
        {
            a.mov(al, 0);
            a.@out(KvmExitPort.Port, al);
            a.hlt();
        }));
        return entries;
    }

    private static (int Status, uint ErrorCode, ulong Cr2) RunOnKvm(GuestMemory memory, ulong root, int cpl, bool wp, ulong cr4, bool ac) =>
        KvmOracle.Run(memory, State(root, cpl, wp, cr4, ac));

    private static CpuState State(ulong root, int cpl, bool wp, ulong cr4, bool ac)
    {
        var s = new CpuState();
        var sys = SystemRegisters.Reset();
        var kcs = SegmentRegister.Flat(KernelCs, code: true, longMode: true);
        var kds = SegmentRegister.Flat(KernelDs, code: false);
        var ucs = SegmentRegister.Flat(UserCs | 3, code: true, longMode: true);
        ucs.Dpl = 3;
        var uds = SegmentRegister.Flat(UserDs | 3, code: false);
        uds.Dpl = 3;
        sys.Cs = cpl == 3 ? ucs : kcs;
        sys.Ss = cpl == 3 ? uds : kds;
        sys.Ds = sys.Es = sys.Fs = sys.Gs = sys.Ss;
        sys.Tr = new SegmentRegister { Selector = TssSel, Base = Tss, Limit = 0x67, Type = 0xB, Present = true };
        sys.Gdt = new DescriptorTable { Base = Gdt, Limit = 0x37 };
        sys.Idt = new DescriptorTable { Base = Idt, Limit = 0xFFF };
        sys.Cr0 = ControlCr0(wp);
        sys.Cr3 = root;
        sys.Cr4 = SystemRegisters.Cr4Pae | SystemRegisters.Cr4Osfxsr | SystemRegisters.Cr4Osxmmexcpt | cr4;
        sys.Efer = SystemRegisters.EferSce | SystemRegisters.EferLme | SystemRegisters.EferLma | SystemRegisters.EferNxe;
        s.System = sys;
        s.Registers.Rip = cpl == 3 ? UserCode : KernelCode;
        s.Registers.Rsp = cpl == 3 ? UserStackTop : KernelStackTop;
        s.Registers.Rflags = CpuRegisters.RflagsReserved | (3UL << 12) // IOPL 3: CPL 3 may write the exit port
                             | (ac ? PagingState.RflagsAc : 0);
        return s;
    }

    private static void WriteGdtTssIdt(GuestMemory memory)
    {
        // 64-bit code/data descriptors, DPL 0 and 3 (Intel SDM Vol. 3A Figure 3-8) and a 64-bit TSS (§7.2.3).
        Write64(memory, Gdt, 0);
        Write64(memory, Gdt + KernelCs, 0x00AF_9A00_0000_FFFF);
        Write64(memory, Gdt + KernelDs, 0x00CF_9200_0000_FFFF);
        Write64(memory, Gdt + UserDs, 0x00CF_F200_0000_FFFF);
        Write64(memory, Gdt + UserCs, 0x00AF_FA00_0000_FFFF);
        Write64(memory, Gdt + TssSel, 0x67 | ((Tss & 0xFF_FFFF) << 16) | (0x89UL << 40));
        Write64(memory, Gdt + TssSel + 8, 0);
        Write64(memory, Tss + 4, KernelStackTop); // RSP0

        // 64-bit interrupt gates (§6.14.1): #PF to its handler, every other vector to the "unexpected" one.
        for (ulong v = 0; v < 256; v++)
        {
            ulong handler = v == 14 ? FaultHandler : OtherHandler;
            ulong low = (handler & 0xFFFF) | ((ulong)KernelCs << 16) | (0x8EUL << 40) | ((handler >> 16 & 0xFFFF) << 48);
            Write64(memory, Idt + (v * 16), low);
            Write64(memory, Idt + (v * 16) + 8, handler >> 32);
        }
    }

    private static byte[] Assemble(ulong address, Action<Assembler> build) => KvmOracle.Assemble(64, address, build);

    private static void Load(GuestMemory memory, ulong gpa, byte[] bytes) => KvmOracle.Load(memory, gpa, bytes);

    private static ulong Read64(GuestMemory memory, ulong gpa)
    {
        Assert.True(memory.TryRead(gpa, out ulong v));
        return v;
    }

    private static void Write64(GuestMemory memory, ulong gpa, ulong value) => Assert.True(memory.TryWrite(gpa, value));
}
