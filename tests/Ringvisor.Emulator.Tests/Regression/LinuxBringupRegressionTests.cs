// Regressions found while booting the Debian cloud kernel under the bt engine (docs: brief "Linux bring-up").
// Each test reproduces the guest code shape that went wrong, reduced to a few instructions.
using Iced.Intel;
using Ringvisor.Core.Cpu;
using Ringvisor.Emulator.Tests.Interpreter;
using static Iced.Intel.AssemblerRegisters;

namespace Ringvisor.Emulator.Tests.Regression;

public sealed class LinuxBringupRegressionTests
{
    private const ulong Function = 0x20000;
    private const ulong Data = 0x40000;

    /// <summary>
    /// startup_64_setup_env's frame (push rbp; mov rbp,rsp; sub rsp,20h; stores through rdi; leave; ret): LEAVE ran
    /// with a zero operand size (Iced reports no stack increment for it), so the RET popped the saved RBP instead of
    /// the return address and the kernel executed zeros right after its decompressor.
    /// </summary>
    [Fact]
    public void Leave_In64BitMode_PopsEightBytesSoRetReturnsToCaller()
    {
        using var g = new GuestHarness();
        g.SetupLongMode();
        g.Code64(Function, a =>
        {
            a.push(rbp);
            a.mov(rbp, rsp);
            a.sub(rsp, 0x20);
            a.mov(__qword_ptr[rdi + 0x1D8], rsi);
            a.mov(__qword_ptr[rdi + 0x1D0], rax);
            a.leave();
            a.ret();
        });
        g.Code64(GuestHarness.CodeBase, a =>
        {
            a.mov(rbp, 0x2A041D0UL); // a caller frame pointer that is not a valid return address
            a.mov(edi, (uint)Data);
            a.mov(esi, 0x1234);
            a.mov(eax, 0x5678);
            a.mov(r8, Function);
            a.call(r8);
            a.mov(ebx, 0xC0DE);
            a.hlt();
        });

        Assert.Equal(VcpuExitReason.Halted, g.Run().Reason);
        var r = g.State.Registers;
        Assert.Equal(0xC0DEUL, r.Rbx);
        Assert.Equal(GuestHarness.StackTop, r.Rsp);
        Assert.Equal(0x2A041D0UL, r.Rbp);
        Assert.Equal(0x1234UL, g.Read64(Data + 0x1D8));
    }

    /// <summary>LEAVE with an operand-size prefix in 64-bit mode pops 16 bits into BP (SDM LEAVE, 66h form).</summary>
    [Fact]
    public void Leave_WithOperandSizePrefixIn64BitMode_PopsTwoBytes()
    {
        using var g = new GuestHarness();
        g.SetupLongMode();
        g.Code64(GuestHarness.CodeBase, a =>
        {
            a.mov(rbp, GuestHarness.StackTop - 0x10);
            a.mov(__qword_ptr[rbp], 0x4444);
            a.db(0x66, 0xC9); // leavew
            a.hlt();
        });

        Assert.Equal(VcpuExitReason.Halted, g.Run().Reason);
        var r = g.State.Registers;
        Assert.Equal(GuestHarness.StackTop - 0x10 + 2, r.Rsp);
        Assert.Equal(((GuestHarness.StackTop - 0x10) & ~0xFFFFUL) | 0x4444, r.Rbp);
    }

    /// <summary>
    /// REP MOVSD/MOVSQ whose destination overlaps the source by less than one element: each element is read whole
    /// before it is written, so the result differs from a byte-by-byte forward copy (the fast path used bytes).
    /// </summary>
    [Theory]
    [InlineData(4, 1)]
    [InlineData(4, 2)]
    [InlineData(4, 3)]
    [InlineData(8, 4)]
    [InlineData(8, 7)]
    [InlineData(2, 1)]
    public void RepMovs_DestinationOverlapsSourceByLessThanAnElement_CopiesElementWise(int size, int distance)
    {
        const int count = 16;
        var initial = Enumerable.Range(0, 256).Select(i => (byte)(i * 7 + 1)).ToArray();
        var expected = (byte[])initial.Clone();
        for (int e = 0; e < count; e++)
        {
            // Sequential semantics: read element e from the current memory, then write it.
            var element = expected.AsSpan(e * size, size).ToArray();
            element.CopyTo(expected.AsSpan(distance + (e * size), size));
        }

        using var g = new GuestHarness();
        g.SetupLongMode();
        g.Write(Data, initial);
        g.Code64(GuestHarness.CodeBase, a =>
        {
            a.cld();
            a.mov(ecx, count);
            a.mov(esi, (uint)Data);
            a.mov(edi, (uint)Data + (uint)distance);
            switch (size)
            {
                case 2: a.rep.movsw(); break;
                case 4: a.rep.movsd(); break;
                default: a.rep.movsq(); break;
            }

            a.hlt();
        });

        Assert.Equal(VcpuExitReason.Halted, g.Run().Reason);
        var actual = new byte[initial.Length];
        Assert.Equal(Ringvisor.Core.Memory.MemoryAccessResult.Ok, g.Memory.Read(Data, actual));
        Assert.Equal(expected, actual);
        var r = g.State.Registers;
        Assert.Equal(0UL, r.Rcx);
        Assert.Equal(Data + (ulong)(count * size), r.Rsi);
        Assert.Equal(Data + (ulong)(distance + (count * size)), r.Rdi);
    }
    /// <summary>
    /// kvm-clock after the guest moved its TSC (WRMSR IA32_TIME_STAMP_COUNTER): pvclock_vcpu_time_info.tsc_timestamp
    /// must be in guest TSC units, because the guest computes system_time + (RDTSC - tsc_timestamp) * scale. It was
    /// written in host clock ticks (the guest TSC minus its offset), skewing guest time by the offset.
    /// </summary>
    [Fact]
    public void KvmClock_AfterTscWrite_TscTimestampIsInGuestTscUnits()
    {
        const uint msrTsc = 0x10;              // IA32_TIME_STAMP_COUNTER (SDM Vol. 4 Table 2-2)
        const uint msrSystemTimeNew = 0x4b564d01; // MSR_KVM_SYSTEM_TIME_NEW (Linux Documentation/virt/kvm/x86/msr.rst)
        const ulong pvclock = 0x50000;
        const ulong guestTsc = 1UL << 44;
        using var g = new GuestHarness();
        g.SetupLongMode();
        g.Code64(GuestHarness.CodeBase, a =>
        {
            a.mov(ecx, msrTsc);
            a.mov(eax, unchecked((uint)guestTsc));
            a.mov(edx, (uint)(guestTsc >> 32));
            a.wrmsr();
            a.mov(ecx, msrSystemTimeNew);
            a.mov(eax, (uint)pvclock | 1); // bit 0: enable
            a.xor(edx, edx);
            a.wrmsr();
            a.rdtsc();
            a.shl(rdx, 32);
            a.or(rax, rdx);
            a.mov(r8, Data);
            a.mov(__qword_ptr[r8], rax);
            a.hlt();
        });

        Assert.Equal(VcpuExitReason.Halted, g.Run().Reason);
        ulong tscAfter = g.Read64(Data);
        ulong tscTimestamp = g.Read64(pvclock + 8);
        Assert.True(tscAfter >= guestTsc, $"RDTSC {tscAfter:x} is below the written TSC {guestTsc:x}");
        Assert.True(tscTimestamp <= tscAfter, $"tsc_timestamp {tscTimestamp:x} is after the RDTSC {tscAfter:x} that followed it");
        // The structure was written between the two RDTSC-visible moments: within a second of guest TSC (1 GHz).
        Assert.True(tscAfter - tscTimestamp < 1_000_000_000UL, $"tsc_timestamp {tscTimestamp:x} is not near the guest TSC {tscAfter:x}");
    }
}
