using System.Buffers.Binary;
using System.Runtime.Intrinsics;
using Iced.Intel;
using Ringvisor.Emulator.Fpu;
using static Iced.Intel.AssemblerRegisters;

namespace Ringvisor.Emulator.Tests.Fpu;

/// <summary>FpuState reset values and the FXSAVE/FXRSTOR image (SDM Vol. 1 Tables 10-2 and 10-3).</summary>
public class FpuStateTests
{
    private static FpuState Sample()
    {
        var s = new FpuState();
        s.Reset();
        s.Fcw = 0x0A7F;
        s.Fsw = 0x2000 | FpuState.FswPe; // TOP = 4
        s.AbridgedTag = 0b1001_0001;
        s.Fop = 0x1E8;
        s.Fip = 0x1234_5678_9ABC;
        s.Fcs = 0x23;
        s.Fdp = 0x0FED_CBA9_8765;
        s.Fds = 0x2B;
        s.Mxcsr = 0x9FC1;
        for (var k = 0; k < 8; k++)
        {
            s.Registers[k] = new Float80(0x8000_0000_0000_0000UL + (uint)k, (ushort)(0x3FFF + k));
        }

        for (var k = 0; k < 16; k++)
        {
            s.Xmm[k] = Vector128.Create((byte)(k * 16 + 1));
        }

        return s;
    }

    [Fact]
    public void Reset_ArchitecturalValues()
    {
        var s = Sample();
        s.Reset();
        Assert.Equal(0x037F, s.Fcw);
        Assert.Equal(0, s.Fsw);
        Assert.Equal(0, s.AbridgedTag);
        Assert.Equal(0x1F80u, s.Mxcsr);
        Assert.Equal(0xFFFF, s.FullTagWord());
    }

    [Fact]
    public void FxSave_64BitImage_HasTable10_3Offsets()
    {
        var s = Sample();
        var image = new byte[512];
        image.AsSpan(464).Fill(0xAB);
        s.FxSave(image, rexW: true, xmmCount: 16);
        Assert.Equal(0x0A7F, BinaryPrimitives.ReadUInt16LittleEndian(image));
        Assert.Equal(0x2020, BinaryPrimitives.ReadUInt16LittleEndian(image.AsSpan(2)));
        Assert.Equal(0b1001_0001, image[4]);
        Assert.Equal(0x1E8, BinaryPrimitives.ReadUInt16LittleEndian(image.AsSpan(6)));
        Assert.Equal(0x1234_5678_9ABCUL, BinaryPrimitives.ReadUInt64LittleEndian(image.AsSpan(8)));
        Assert.Equal(0x0FED_CBA9_8765UL, BinaryPrimitives.ReadUInt64LittleEndian(image.AsSpan(16)));
        Assert.Equal(0x9FC1u, BinaryPrimitives.ReadUInt32LittleEndian(image.AsSpan(24)));
        Assert.Equal(0xFFFFu, BinaryPrimitives.ReadUInt32LittleEndian(image.AsSpan(28)));
        // ST0 is physical register TOP = 4, stored first; ST7 = R3.
        Assert.Equal(0x8000_0000_0000_0004UL, BinaryPrimitives.ReadUInt64LittleEndian(image.AsSpan(32)));
        Assert.Equal(0x3FFF + 4, BinaryPrimitives.ReadUInt16LittleEndian(image.AsSpan(40)));
        Assert.Equal(0x8000_0000_0000_0003UL, BinaryPrimitives.ReadUInt64LittleEndian(image.AsSpan(32 + (7 * 16))));
        Assert.Equal(0x01, image[160]);
        Assert.Equal(0xF1, image[160 + (15 * 16)]);
        Assert.All(image.AsSpan(464).ToArray(), b => Assert.Equal(0xAB, b));
    }

    [Fact]
    public void FxSave_32BitImage_HasSelectorsAndOnlyEightXmm()
    {
        var s = Sample();
        var image = new byte[512];
        image.AsSpan(288, 128).Fill(0xCD);
        s.FxSave(image, rexW: false, xmmCount: 8);
        Assert.Equal(0x5678_9ABCu, BinaryPrimitives.ReadUInt32LittleEndian(image.AsSpan(8)));
        Assert.Equal(0x23, BinaryPrimitives.ReadUInt16LittleEndian(image.AsSpan(12)));
        Assert.Equal(0xA987_65u | 0xCB00_0000u, BinaryPrimitives.ReadUInt32LittleEndian(image.AsSpan(16)));
        Assert.Equal(0x2B, BinaryPrimitives.ReadUInt16LittleEndian(image.AsSpan(20)));
        Assert.All(image.AsSpan(288, 128).ToArray(), b => Assert.Equal(0xCD, b));
    }

    [Fact]
    public void FxRstor_RoundTrip_RestoresEverything()
    {
        var s = Sample();
        var image = new byte[512];
        s.FxSave(image, rexW: true, xmmCount: 16);
        var t = new FpuState();
        Assert.True(t.FxRstor(image, rexW: true, xmmCount: 16));
        Assert.Equal(s.Fcw, t.Fcw);
        Assert.Equal(s.Fsw, t.Fsw);
        Assert.Equal(s.AbridgedTag, t.AbridgedTag);
        Assert.Equal(s.Fop, t.Fop);
        Assert.Equal(s.Fip, t.Fip);
        Assert.Equal(s.Fdp, t.Fdp);
        Assert.Equal(s.Mxcsr, t.Mxcsr);
        Assert.Equal(s.Registers, t.Registers);
        Assert.Equal(s.Xmm, t.Xmm);
    }

    [Fact]
    public void FxRstor_ReservedMxcsrBits_RejectedWithoutChange()
    {
        var s = Sample();
        var image = new byte[512];
        s.FxSave(image, rexW: true, xmmCount: 16);
        BinaryPrimitives.WriteUInt32LittleEndian(image.AsSpan(24), 0x1_1F80);
        var t = new FpuState();
        Assert.False(t.FxRstor(image, rexW: true, xmmCount: 16));
        Assert.Equal(FpuState.MxcsrDefault, t.Mxcsr);
        Assert.Equal(FpuState.FcwDefault, t.Fcw);
    }

    [Fact]
    public void SaveRestoreRecord_RoundTrip()
    {
        var s = Sample();
        var t = new FpuState();
        t.Restore(s.Save());
        Assert.Equal(s.Fcs, t.Fcs);
        Assert.Equal(s.Fds, t.Fds);
        Assert.Equal(s.Registers, t.Registers);
        Assert.Equal(s.Xmm, t.Xmm);
    }

    [Fact]
    public void FxsaveInstruction_AlignmentAndMxcsrChecks()
    {
        var s = Sample();
        var a = new FakeSimdAccess();
        a.Gprs[Register.RBX] = 0x1008;
        var save = Asm.One(asm => asm.fxsave64(__[rbx]));
        Assert.Equal(SimdOutcome.GeneralProtection, SimdExecutor.Execute(in save, s, a));
        a.Gprs[Register.RBX] = 0x1000;
        Assert.Equal(SimdOutcome.Ok, SimdExecutor.Execute(in save, s, a));
        Assert.Equal(0x1234_5678_9ABCUL, a.ReadUInt64(0x1008));
        var plain = Asm.One(asm => asm.fxsave(__[rbx + 0x200]));
        Assert.Equal(SimdOutcome.Ok, SimdExecutor.Execute(in plain, s, a));
        Assert.Equal(0x23, BinaryPrimitives.ReadUInt16LittleEndian(a.Memory.AsSpan(0x120C)));

        var t = new FpuState();
        var restore = Asm.One(asm => asm.fxrstor64(__[rbx]));
        Assert.Equal(SimdOutcome.Ok, SimdExecutor.Execute(in restore, t, a));
        Assert.Equal(s.Xmm, t.Xmm);
        BinaryPrimitives.WriteUInt32LittleEndian(a.Memory.AsSpan(0x1018), 0x1_0000);
        Assert.Equal(SimdOutcome.GeneralProtection, SimdExecutor.Execute(in restore, t, a));
    }

    [Fact]
    public void Ldmxcsr_ReservedBits_GeneralProtection()
    {
        var s = new FpuState();
        var a = new FakeSimdAccess();
        a.Gprs[Register.RBX] = 0x100;
        a.WriteBytes(0x100, BitConverter.GetBytes(0x0001_1F80u));
        var ld = Asm.One(asm => asm.ldmxcsr(__dword_ptr[rbx]));
        Assert.Equal(SimdOutcome.GeneralProtection, SimdExecutor.Execute(in ld, s, a));
        a.WriteBytes(0x100, BitConverter.GetBytes(0x0000_FFC0u));
        Assert.Equal(SimdOutcome.Ok, SimdExecutor.Execute(in ld, s, a));
        Assert.Equal(0xFFC0u, s.Mxcsr);
        var st = Asm.One(asm => asm.stmxcsr(__dword_ptr[rbx + 4]));
        Assert.Equal(SimdOutcome.Ok, SimdExecutor.Execute(in st, s, a));
        Assert.Equal(0xFFC0u, BitConverter.ToUInt32(a.Memory, 0x104));
    }
}
