// The interpreter's use of Memory/Mmu: what CPUID advertises, SMEP/SMAP with STAC/CLAC, PAE PDPTE loading by MOV CR3,
// INVLPG and CR3 reloads, the xAPIC page following IA32_APIC_BASE, cross-vCPU code modification, and --stats.
using Ringvisor.Core.Cpu;
using Ringvisor.Emulator.Memory;
using static Iced.Intel.AssemblerRegisters;

namespace Ringvisor.Emulator.Tests.Interpreter;

public sealed class CpuMmuWiringTests
{
    private const ulong UserPage = 0x20_0000;      // first page of the second 2 MiB mapping (user, see SupervisorLowMemory)
    private const ulong FaultInfo = 0x9000;         // the #PF/#GP handler stores vector-specific data here
    private const ulong Handler = 0x1_8000;
    private const uint Cr4Smep = 1u << 20, Cr4Smap = 1u << 21;

    [Fact]
    public void Cpuid_Features_AdvertiseSmepSmapNotPcidPkuLa57()
    {
        using var g = new GuestHarness();
        g.SetupLongMode();
        g.Code64(GuestHarness.CodeBase, a =>
        {
            a.mov(eax, 7);
            a.xor(ecx, ecx);
            a.cpuid();
            a.mov(__dword_ptr[0x9000], ebx);
            a.mov(__dword_ptr[0x9004], ecx);
            a.mov(eax, 1);
            a.cpuid();
            a.mov(__dword_ptr[0x9008], ecx);
            a.mov(eax, 0x8000_0008);
            a.cpuid();
            a.mov(__dword_ptr[0x900C], eax);
            a.hlt();
        });

        Assert.Equal(VcpuExitReason.Halted, g.Run().Reason);
        Assert.True(g.Memory.TryRead(0x9000, out uint leaf7Ebx));
        Assert.True(g.Memory.TryRead(0x9004, out uint leaf7Ecx));
        Assert.True(g.Memory.TryRead(0x9008, out uint leaf1Ecx));
        Assert.True(g.Memory.TryRead(0x900C, out uint addressSizes));
        Assert.NotEqual(0u, leaf7Ebx & (1u << 7));   // SMEP (SDM Vol. 2A Table 3-8)
        Assert.NotEqual(0u, leaf7Ebx & (1u << 20));  // SMAP
        Assert.Equal(0u, leaf7Ecx & (1u << 3));      // PKU
        Assert.Equal(0u, leaf7Ecx & (1u << 16));     // LA57
        Assert.Equal(0u, leaf1Ecx & (1u << 17));     // PCID (Table 3-10)
        Assert.Equal((uint)Mmu.PhysicalAddressBits, addressSizes & 0xFF);
        Assert.Equal(48u, (addressSizes >> 8) & 0xFF);
    }

    [Fact]
    public void SpeculationControls_EnhancedIbrsAndNotAffectedBits_SpecCtrlHoldsItsValue()
    {
        // CPUID.7.EDX: IBRS/IBPB (26), STIBP (27), IA32_ARCH_CAPABILITIES (29); that MSR reports enhanced IBRS and the
        // "not affected" bits Linux checks before choosing retpolines and return thunks; IA32_SPEC_CTRL keeps what is
        // written and IA32_PRED_CMD accepts an IBPB.
        using var g = new GuestHarness();
        g.SetupLongMode();
        g.Code64(GuestHarness.CodeBase, a =>
        {
            a.mov(eax, 7);
            a.xor(ecx, ecx);
            a.cpuid();
            a.mov(__dword_ptr[0x9000], edx);
            a.mov(ecx, 0x10A);
            a.rdmsr();
            a.mov(__dword_ptr[0x9004], eax);
            a.mov(__dword_ptr[0x9008], edx);
            a.mov(ecx, 0x48);
            a.mov(eax, 1);
            a.xor(edx, edx);
            a.wrmsr();
            a.mov(ecx, 0x49);
            a.wrmsr();
            a.mov(ecx, 0x48);
            a.xor(eax, eax);
            a.rdmsr();
            a.mov(__dword_ptr[0x900C], eax);
            a.hlt();
        });

        Assert.Equal(VcpuExitReason.Halted, g.Run().Reason);
        Assert.True(g.Memory.TryRead(0x9000, out uint leaf7Edx));
        Assert.True(g.Memory.TryRead(0x9004, out uint capLow));
        Assert.True(g.Memory.TryRead(0x9008, out uint capHigh));
        Assert.True(g.Memory.TryRead(0x900C, out uint specCtrl));
        Assert.NotEqual(0u, leaf7Edx & (1u << 26));   // IBRS/IBPB
        Assert.NotEqual(0u, leaf7Edx & (1u << 27));   // STIBP
        Assert.NotEqual(0u, leaf7Edx & (1u << 29));   // IA32_ARCH_CAPABILITIES
        foreach (int bit in new[] { 0, 1, 5, 8, 20, 24, 27 })
        {
            Assert.True((capLow & (1u << bit)) != 0, $"IA32_ARCH_CAPABILITIES bit {bit}");
        }

        Assert.NotEqual(0u, capHigh & (1u << (62 - 32)));   // ITS_NO
        Assert.Equal(0u, capLow & (1u << 2));                // RSBA
        Assert.Equal(1u, specCtrl);
        Assert.Equal(1UL, g.State.Msrs[0x48]);
    }

    [Fact]
    public void Smap_SupervisorReadOfUserPage_FaultsUnlessStac()
    {
        using var g = NewSupervisorGuest();
        g.Write64(UserPage + 0x10, 0x1234_5678_9ABC_DEF0);
        g.Code64(GuestHarness.CodeBase, a =>
        {
            a.mov(rax, cr4);
            a.or(eax, (int)Cr4Smap);
            a.mov(cr4, rax);
            a.mov(ecx, 0x55);
            a.stac();
            a.mov(rbx, __qword_ptr[UserPage + 0x10]); // allowed: RFLAGS.AC = 1
            a.clac();
            a.mov(rcx, __qword_ptr[UserPage + 0x10]); // #PF: supervisor read of a user page with AC = 0
            a.hlt();
        });

        Assert.Equal(VcpuExitReason.Halted, g.Run().Reason);
        var s = g.State;
        Assert.Equal(0x1234_5678_9ABC_DEF0UL, s.Registers.Rbx);
        Assert.Equal(14UL, g.Read64(FaultInfo));
        Assert.Equal(0x1UL, g.Read64(FaultInfo + 8));       // P = 1, W = 0, U/S = 0
        Assert.Equal(UserPage + 0x10, s.System.Cr2);
        Assert.Equal(0x55UL, s.Registers.Rcx); // the faulting load wrote nothing
    }

    [Fact]
    public void Stac_AtCpl3_RaisesUd()
    {
        using var g = new GuestHarness();
        g.SetupLongMode();
        g.SetGate64(6, Handler);
        g.Code64(Handler, a =>
        {
            a.mov(__qword_ptr[FaultInfo], 6);
            a.hlt();
        });
        g.Code64(GuestHarness.CodeBase, a =>
        {
            // IRETQ to CPL 3 at the next instruction, which is STAC.
            a.mov(rax, (ulong)(GuestHarness.UserDs | 3));
            a.push(rax);
            a.push(0x7_0000);
            a.push(2);
            a.mov(rax, (ulong)(GuestHarness.UserCs | 3));
            a.push(rax);
            a.mov(rax, GuestHarness.CodeBase + 0x100);
            a.push(rax);
            a.iretq();
        });
        g.Code64(GuestHarness.CodeBase + 0x100, a => a.stac());
        g.Write64(GuestHarness.TssBase + 4, GuestHarness.StackTop); // RSP0 for the #UD delivery from CPL 3

        Assert.Equal(VcpuExitReason.Halted, g.Run().Reason);
        Assert.Equal(6UL, g.Read64(FaultInfo));
        Assert.Equal(GuestHarness.CodeBase + 0x100, g.Read64(GuestHarness.StackTop - 40)); // the faulting RIP
        Assert.Equal((ulong)(GuestHarness.UserCs | 3), g.Read64(GuestHarness.StackTop - 32)); // raised at CPL 3
    }

    [Fact]
    public void Smep_SupervisorFetchFromUserPage_FaultsWithInstructionFetchBit()
    {
        using var g = NewSupervisorGuest();
        g.Code64(UserPage, a => a.hlt());
        g.Code64(GuestHarness.CodeBase, a =>
        {
            a.mov(rax, cr4);
            a.or(eax, (int)Cr4Smep);
            a.mov(cr4, rax);
            a.mov(rax, UserPage);
            a.jmp(rax);
        });

        Assert.Equal(VcpuExitReason.Halted, g.Run().Reason);
        Assert.Equal(14UL, g.Read64(FaultInfo));
        Assert.Equal(0x11UL, g.Read64(FaultInfo + 8)); // P = 1, I/D = 1 (SDM Vol. 3A §4.7)
        Assert.Equal(UserPage, g.State.System.Cr2);
        Assert.Equal(UserPage, g.Read64(FaultInfo + 16)); // the faulting RIP is the target
    }

    [Fact]
    public void Invlpg_AfterPteChange_NextAccessSeesNewMapping()
    {
        using var g = NewFourKGuest(out ulong pte);
        g.Write64(0x50_0000, 0x1111);
        g.Write64(0x51_0000, 0x2222);
        g.Code64(GuestHarness.CodeBase, a =>
        {
            a.mov(rbx, __qword_ptr[0x40_0000]);       // maps physical 0x500000 (fills the TLB)
            a.mov(rax, 0x51_0000UL | 0x3);
            a.mov(__qword_ptr[pte], rax);              // remap to 0x510000
            a.invlpg(__byte_ptr[0x40_0000]);
            a.mov(rcx, __qword_ptr[0x40_0000]);
            a.hlt();
        });

        Assert.Equal(VcpuExitReason.Halted, g.Run().Reason);
        Assert.Equal(0x1111UL, g.State.Registers.Rbx);
        Assert.Equal(0x2222UL, g.State.Registers.Rcx);
    }

    [Fact]
    public void MovCr3_AfterPteChange_NonGlobalMappingReloaded()
    {
        using var g = NewFourKGuest(out ulong pte);
        g.Write64(0x50_0000, 0x1111);
        g.Write64(0x51_0000, 0x2222);
        g.Code64(GuestHarness.CodeBase, a =>
        {
            a.mov(rbx, __qword_ptr[0x40_0000]);
            a.mov(rax, 0x51_0000UL | 0x3);
            a.mov(__qword_ptr[pte], rax);
            a.mov(rax, cr3);
            a.mov(cr3, rax);
            a.mov(rcx, __qword_ptr[0x40_0000]);
            a.hlt();
        });

        Assert.Equal(VcpuExitReason.Halted, g.Run().Reason);
        Assert.Equal(0x1111UL, g.State.Registers.Rbx);
        Assert.Equal(0x2222UL, g.State.Registers.Rcx);
    }

    [Fact]
    public void MovCr3_PaeWithReservedPdpteBit_RaisesGpAndKeepsCr3()
    {
        using var g = new GuestHarness();
        const ulong pdptGood = 0x7000, pdptBad = 0x7100, pd = 0x3000, gdt = 0x800, idt = 0xA00;
        g.Write64(pd, 0x83);                          // 2 MiB identity page, supervisor, writable
        g.Write64(pdptGood, pd | 0x1);
        g.Write64(pdptBad, pd | 0x1 | 0x2);           // bit 1 is reserved in a PAE PDPTE (SDM Vol. 3A Table 4-8)
        g.Write64(gdt + 0x08, GuestHarness.Descriptor(0, 0xFFFFF, 0x9B, 0xC)); // code32
        g.Write64(gdt + 0x10, GuestHarness.Descriptor(0, 0xFFFFF, 0x93, 0xC)); // data
        // 32-bit interrupt gate for #GP (vector 13) to 0x8:Handler.
        g.Write64(idt + 13 * 8, (Handler & 0xFFFF) | (0x08UL << 16) | (0x8EUL << 40) | ((Handler >> 16) << 48));
        g.Write(Handler, GuestHarness.Assemble(32, Handler, a =>
        {
            a.pop(eax);                                // error code
            a.mov(__dword_ptr[(uint)FaultInfo], eax);
            a.mov(eax, cr3);
            a.mov(__dword_ptr[(uint)FaultInfo + 4], eax);
            a.hlt();
        }));
        g.Write(GuestHarness.CodeBase, GuestHarness.Assemble(32, GuestHarness.CodeBase, a =>
        {
            a.mov(eax, (uint)pdptGood);
            a.mov(cr3, eax);                           // fine: reloads the PDPTEs
            a.mov(__dword_ptr[(uint)FaultInfo + 8], 1);
            a.mov(eax, (uint)pdptBad);
            a.mov(cr3, eax);                           // #GP(0), CR3 unchanged
            a.mov(__dword_ptr[(uint)FaultInfo + 12], 1);
            a.hlt();
        }));

        var s = new CpuState();
        s.Registers.Rip = GuestHarness.CodeBase;
        s.Registers.Rsp = GuestHarness.StackTop;
        s.Registers.Rflags = 2;
        s.System.Cs = SegmentRegister.Flat(0x08, code: true);
        s.System.Ds = s.System.Es = s.System.Ss = s.System.Fs = s.System.Gs = SegmentRegister.Flat(0x10, code: false);
        s.System.Gdt = new DescriptorTable { Base = gdt, Limit = 0x17 };
        s.System.Idt = new DescriptorTable { Base = idt, Limit = 0xFF };
        s.System.Cr0 = SystemRegisters.Cr0Pe | SystemRegisters.Cr0Pg | SystemRegisters.Cr0Et;
        s.System.Cr3 = pdptGood;
        s.System.Cr4 = SystemRegisters.Cr4Pae;
        g.Vcpu.SetState(s);

        Assert.Equal(VcpuExitReason.Halted, g.Run().Reason);
        Assert.True(g.Memory.TryRead(FaultInfo, out uint error));
        Assert.True(g.Memory.TryRead(FaultInfo + 4, out uint cr3InHandler));
        Assert.True(g.Memory.TryRead(FaultInfo + 8, out uint reachedGood));
        Assert.True(g.Memory.TryRead(FaultInfo + 12, out uint reachedAfterBad));
        Assert.Equal(0u, error);
        Assert.Equal((uint)pdptGood, cr3InHandler);
        Assert.Equal(1u, reachedGood);
        Assert.Equal(0u, reachedAfterBad);
        Assert.Equal(pdptGood, g.State.System.Cr3);
    }

    [Fact]
    public void ApicBaseWrite_OntoCachedRamPage_LaterReadsReachTheApic()
    {
        const ulong page = 0xF0_0000;
        var apic = new FakeLocalApic { ReadFill = 0xA5 };
        using var g = new GuestHarness([apic]);
        g.SetupLongMode();
        g.Write64(page + 0x20, 0x77);
        g.Code64(GuestHarness.CodeBase, a =>
        {
            a.mov(rbx, __qword_ptr[page + 0x20]);     // RAM, now cached in the TLB
            a.mov(ecx, 0x1B);
            a.mov(eax, (uint)page | (1u << 11));      // IA32_APIC_BASE: the xAPIC page moves onto that RAM page
            a.xor(edx, edx);
            a.wrmsr();
            a.mov(ecx, __dword_ptr[page + 0x20]);     // the APIC's register now
            a.hlt();
        });

        Assert.Equal(VcpuExitReason.Halted, g.Run().Reason);
        Assert.Equal(0x77UL, g.State.Registers.Rbx);
        Assert.Equal(0xA5A5_A5A5UL, g.State.Registers.Rcx);
    }

    [Fact]
    public void StoreByOtherVcpu_IntoPageThisVcpuDecoded_NextFetchSeesNewCode()
    {
        using var g = new GuestHarness();
        g.SetupLongMode();
        const ulong codePage = 0x3_0000, flagGo = 0x9000, flagDone = 0x9008;
        var patchedImmediate = codePage + 1;          // the imm32 of "mov eax, imm32" at codePage
        g.Code64(codePage, a =>
        {
            var top = a.CreateLabel();
            var wait = a.CreateLabel();
            var done = a.CreateLabel();
            a.Label(ref top);
            a.mov(eax, 1);
            a.cmp(eax, 2);
            a.je(done);
            a.mov(__dword_ptr[flagGo], 1);
            a.Label(ref wait);
            a.cmp(__dword_ptr[flagDone], 0);
            a.je(wait);
            a.jmp(top);
            a.Label(ref done);
            a.hlt();
        });

        // The other vCPU stores into the code page first (its TLB then holds a writable entry for it), waits for the
        // go flag, patches the immediate and reports. The patch must reach this vCPU's decoded copy.
        const ulong otherCode = 0x4_0000;
        g.Code64(otherCode, a =>
        {
            var wait = a.CreateLabel();
            a.mov(__dword_ptr[codePage + 0xF00], 0);
            a.Label(ref wait);
            a.cmp(__dword_ptr[flagGo], 0);
            a.je(wait);
            a.mov(__dword_ptr[patchedImmediate], 2);
            a.mov(__dword_ptr[flagDone], 1);
            a.hlt();
        });

        var start = g.Vcpu.GetState();
        using var other = new BtVcpu(g.Host, 1);
        var otherState = g.Vcpu.GetState();
        otherState.Registers.Rip = otherCode;
        otherState.Registers.Rsp = 0x7_0000;
        other.SetState(otherState);
        start.Registers.Rip = codePage;
        g.Vcpu.SetState(start);

        VcpuExit otherExit = default;
        var t = new Thread(() => otherExit = other.Run());
        t.Start();

        // A vCPU that keeps running stale code never halts: kick it after a generous delay so the test fails, not hangs.
        using var watchdog = new Timer(_ =>
        {
            g.Vcpu.Kick();
            other.Kick();
        }, null, TimeSpan.FromSeconds(20), Timeout.InfiniteTimeSpan);
        var exit = g.Run();
        t.Join();

        Assert.Equal(VcpuExitReason.Halted, exit.Reason);
        Assert.Equal(VcpuExitReason.Halted, otherExit.Reason);
        Assert.Equal(2UL, g.State.Registers.Rax);
    }

    [Fact]
    public void InterruptDelivery_NonCanonicalStack_RaisesStackFault()
    {
        using var g = new GuestHarness();
        g.SetupLongMode();
        const ulong h3 = Handler, h12 = Handler + 0x100, h13 = Handler + 0x200;
        g.SetGate64(3, h3);
        g.SetGate64(12, h12, ist: 1);
        g.SetGate64(13, h13, ist: 1);
        g.Write64(GuestHarness.TssBase + 0x24, 0x7_0000); // IST1
        g.Code64(h3, a => { a.mov(__qword_ptr[FaultInfo], 3); a.hlt(); });
        g.Code64(h12, a => { a.mov(__qword_ptr[FaultInfo], 12); a.hlt(); });
        g.Code64(h13, a => { a.mov(__qword_ptr[FaultInfo], 13); a.hlt(); });
        g.Code64(GuestHarness.CodeBase, a =>
        {
            a.mov(rsp, 0x8000_0000_0010UL);
            a.int3();
        });

        Assert.Equal(VcpuExitReason.Halted, g.Run().Reason);

        // SDM Vol. 3A §6.15, interrupt 12: a non-canonical stack address in 64-bit mode is #SS(0), also for the
        // pushes of event delivery.
        Assert.Equal(12UL, g.Read64(FaultInfo));
    }

    [Fact]
    public void InvalidateCode_AfterDmaRewritesDecodedPage_NextFetchSeesNewCode()
    {
        using var g = new GuestHarness();
        g.SetupLongMode();
        const ulong loop = 0x3_0000;
        g.Code64(loop, a =>
        {
            var top = a.CreateLabel();
            a.Label(ref top);
            a.mov(eax, 1);                             // the immediate the "DMA" rewrites
            a.@out(0xF0, eax);
            a.jmp(top);
        });

        // A device that, on the first report, rewrites the immediate behind the vCPU's back (as virtio DMA does,
        // through GuestMemory) and reports it the way the machine's WriteObserver does; on the second it stops the run.
        var seen = new List<uint>();
        var port = new PortProbe(value =>
        {
            seen.Add(value);
            if (seen.Count == 1)
            {
                g.Write(loop + 1, BitConverter.GetBytes(2u));
                g.Vcpu.InvalidateCode(loop + 1, 4);
            }
            else
            {
                g.Vcpu.Kick();
            }
        });
        g.Pio.Register(0xF0, 4, port, "probe");
        var s = g.State;
        s.Registers.Rip = loop;
        g.Vcpu.SetState(s);

        Assert.Equal(VcpuExitReason.Kicked, g.Run().Reason);
        Assert.Equal([1u, 2u], seen);
    }

    [Fact]
    public void Stats_TlbFigures_ComeFromTheMmu()
    {
        using var g = new GuestHarness();
        g.SetupLongMode();
        g.Code64(GuestHarness.CodeBase, a =>
        {
            var top = a.CreateLabel();
            a.mov(ecx, 100);
            a.Label(ref top);
            a.mov(rax, __qword_ptr[0x9000]);
            a.dec(ecx);
            a.jnz(top);
            a.hlt();
        });

        Assert.Equal(VcpuExitReason.Halted, g.Run().Reason);
        var stats = g.Vcpu.Cpu.Mmu.Statistics;
        // Every data load is counted once (instruction fetches reuse the translation of the page being executed).
        Assert.True(stats.TlbHits + stats.TlbMisses >= 100, $"hits {stats.TlbHits}, misses {stats.TlbMisses}");
        Assert.True(stats.TlbMisses >= 1, $"misses {stats.TlbMisses}");
        Assert.Equal(stats.TlbHits, g.Host.Stats.TlbHits);
        Assert.Equal(stats.TlbMisses, g.Host.Stats.TlbMisses);
    }

    /// <summary>
    /// Long mode whose first 2 MiB (code, stack, tables, handlers) are supervisor pages and whose second 2 MiB are user
    /// pages, with a #PF handler at <see cref="Handler"/> that stores 14, the error code and the faulting RIP at
    /// <see cref="FaultInfo"/> and halts.
    /// </summary>
    private static GuestHarness NewSupervisorGuest()
    {
        var g = new GuestHarness();
        g.SetupLongMode();
        g.Write64(GuestHarness.Pd, 0x83);              // 0-2 MiB: present, writable, supervisor
        g.SetGate64(14, Handler);
        g.Code64(Handler, a =>
        {
            a.mov(__qword_ptr[FaultInfo], 14);
            a.pop(rax);
            a.mov(__qword_ptr[FaultInfo + 8], rax);   // error code
            a.pop(rax);
            a.mov(__qword_ptr[FaultInfo + 16], rax);  // RIP
            a.hlt();
        });
        return g;
    }

    /// <summary>Long mode plus a 4 KiB page table mapping linear 0x400000 → physical 0x500000; <paramref name="pte"/> is its entry's address.</summary>
    private static GuestHarness NewFourKGuest(out ulong pte)
    {
        const ulong pt = 0x8000;
        var g = new GuestHarness();
        g.SetupLongMode();
        g.Write64(GuestHarness.Pd + 2 * 8, pt | 0x7);  // 4-6 MiB through a page table
        g.Write64(pt, 0x50_0000 | 0x3);
        pte = pt;
        return g;
    }
}
