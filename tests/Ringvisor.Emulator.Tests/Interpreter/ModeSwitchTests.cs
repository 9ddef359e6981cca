// Real mode → 32-bit protected mode → long mode in one guest (SDM Vol. 3A §9.9, §9.8.5).
using Ringvisor.Core.Cpu;
using static Iced.Intel.AssemblerRegisters;

namespace Ringvisor.Emulator.Tests.Interpreter;

public sealed class ModeSwitchTests
{
    [Fact]
    public void RealToProtectedToLong_FarJumps_ReachSixtyFourBitCode()
    {
        using var g = new GuestHarness();
        // Identity page tables as SetupLongMode builds them, but start in real mode.
        g.SetupLongMode();
        const ulong gdt = 0x800;
        g.Write64(gdt, 0);
        g.Write64(gdt + 0x08, GuestHarness.Descriptor(0, 0xFFFFF, 0x9B, 0xA)); // code64
        g.Write64(gdt + 0x10, GuestHarness.Descriptor(0, 0xFFFFF, 0x93, 0xC)); // data
        g.Write64(gdt + 0x18, GuestHarness.Descriptor(0, 0xFFFFF, 0x9B, 0xC)); // code32
        // GDTR image at 0x7E00: limit, base.
        g.Write(0x7E00, [0x1F, 0x00, 0x00, 0x08, 0x00, 0x00]);

        g.Write(0x7C00, GuestHarness.Assemble(16, 0x7C00, a =>
        {
            a.cli();
            a.lgdt(__dword_ptr[0x7E00]);
            a.mov(eax, cr0);
            a.or(eax, 1);
            a.mov(cr0, eax);
            a.jmp(0x18, 0x8000);
        }));
        g.Write(0x8000, GuestHarness.Assemble(32, 0x8000, a =>
        {
            a.mov(ax, 0x10);
            a.mov(ds, ax);
            a.mov(ss, ax);
            a.mov(esp, 0x70000);
            a.mov(eax, cr4);
            a.or(eax, 0x20);
            a.mov(cr4, eax);
            a.mov(eax, (uint)GuestHarness.Pml4);
            a.mov(cr3, eax);
            a.mov(ecx, 0xC0000080);
            a.rdmsr();
            a.or(eax, 0x100);
            a.wrmsr();
            a.mov(eax, cr0);
            a.or(eax, 0x80000000);
            a.mov(cr0, eax);
            a.jmp(0x08, 0x8800);
        }));
        g.Write(0x8800, GuestHarness.Assemble(64, 0x8800, a =>
        {
            a.mov(rax, 0x1_2345_6789UL);
            a.mov(__qword_ptr[0x9000], rax);
            a.mov(ecx, 0xC0000080);
            a.rdmsr();
            a.hlt();
        }));

        var s = new CpuState();
        s.Registers.Rip = 0x7C00;
        s.Registers.Rflags = 2;
        s.System.Cs = SegmentRegister.RealMode(0, code: true);
        g.Vcpu.SetState(s);

        Assert.Equal(VcpuExitReason.Halted, g.Run().Reason);
        Assert.Equal(0x1_2345_6789UL, g.Read64(0x9000));
        var st = g.State;
        Assert.True(st.System.Cs.Long);
        Assert.Equal((ushort)0x08, st.System.Cs.Selector);
        // EFER.LME and LMA are both set once paging is on.
        Assert.Equal(0x500UL, st.Registers.Rax & 0x500);
    }

    [Fact]
    public void RealMode_IntThroughIvt_PushesFlagsCsIpAndIretReturns()
    {
        using var g = new GuestHarness();
        // IVT entry 0x21 → 0000:0x7D00.
        g.Write(0x21 * 4, [0x00, 0x7D, 0x00, 0x00]);
        g.Write(0x7D00, GuestHarness.Assemble(16, 0x7D00, a =>
        {
            a.mov(bx, sp);
            a.add(si, 1);
            a.iret();
        }));
        g.Write(0x7C00, GuestHarness.Assemble(16, 0x7C00, a =>
        {
            a.mov(sp, 0x7000);
            a.xor(si, si);
            a.@int(0x21);
            a.@int(0x21);
            a.hlt();
        }));
        var s = new CpuState();
        s.Registers.Rip = 0x7C00;
        s.Registers.Rflags = 2;
        s.System.Cs = SegmentRegister.RealMode(0, code: true);
        g.Vcpu.SetState(s);

        Assert.Equal(VcpuExitReason.Halted, g.Run().Reason);
        Assert.Equal(2UL, g.State.Registers.Rsi & 0xFFFF);
        Assert.Equal(0x7000UL - 6, g.State.Registers.Rbx & 0xFFFF);
        Assert.Equal(0x7000UL, g.State.Registers.Rsp & 0xFFFF);
    }
}
