// Compares the interpreter's outcome with the real CPU's, field by field, leaving out what the SDM leaves undefined
// for the case (its flag/register/XMM masks) and what FXSAVE stores model-specifically.
using System.Buffers.Binary;
using System.Text;

namespace Ringvisor.Emulator.Tests.Differential;

internal static class DiffComparer
{
    private static readonly string[] s_gprNames =
        ["rax", "rcx", "rdx", "rbx", "rsp", "rbp", "rsi", "rdi", "r8", "r9", "r10", "r11", "r12", "r13", "r14", "r15"];

    public static string GprName(int i) => s_gprNames[i];

    /// <summary>The differences (empty when the outcomes agree), KVM's value first.</summary>
    public static List<string> Compare(DiffCase c, DiffOutcome kvm, DiffOutcome bt)
    {
        var d = new List<string>();
        if (kvm.Exit != bt.Exit)
        {
            d.Add($"exit: kvm {kvm.Exit} (rip {kvm.FaultRip:X} err {kvm.ErrorCode:X}), bt {bt.Exit} (rip {bt.FaultRip:X} err {bt.ErrorCode:X})");
            return d;
        }

        if (kvm.Failed)
        {
            d.Add($"both failed: {kvm.Exit}");
            return d;
        }

        ulong undefinedFlags = c.UndefinedFlags;
        if (kvm.Vector >= 0)
        {
            // A fault leaves the state of before the instruction (flags included); a trap-like INT n after it.
            Check(d, "fault rip", kvm.FaultRip, bt.FaultRip);
            Check(d, "frame rsp", kvm.FrameRsp, bt.FrameRsp);
            Check(d, "frame rflags", kvm.FrameRflags & ~undefinedFlags, bt.FrameRflags & ~undefinedFlags);
            if (!c.IgnoreErrorCode)
            {
                Check(d, "error code", kvm.ErrorCode, bt.ErrorCode);
            }

            if (kvm.Vector == 14)
            {
                Check(d, "cr2", kvm.Cr2, bt.Cr2);
            }
        }

        for (int i = 0; i < 16; i++)
        {
            if ((c.UndefinedGprs & (1 << i)) == 0)
            {
                Check(d, s_gprNames[i], kvm.Gpr[i], bt.Gpr[i]);
            }
        }

        Check(d, "rip", kvm.Rip, bt.Rip);
        Check(d, "rflags", kvm.Rflags & ~undefinedFlags, bt.Rflags & ~undefinedFlags);
        CompareFx(d, c, kvm.Fx, bt.Fx);
        CompareBytes(d, "data", DiffLayout.Data, kvm.Data, bt.Data);
        CompareBytes(d, "stack", DiffLayout.Stack, kvm.Stack, bt.Stack);
        return d;
    }

    private static void CompareFx(List<string> d, DiffCase c, byte[] k, byte[] b)
    {
        if (!c.UndefinedX87)
        {
            // FCW, FSW, abridged FTW; FOP/FIP/FDP are left out (AMD stores them only with an unmasked exception
            // pending; SDM Vol. 1 §10.5.1 lets FXSAVE vary there). ST0-7: the 80-bit values only.
            Check(d, "fcw", R16(k, DiffFx.Fcw), R16(b, DiffFx.Fcw));
            Check(d, "fsw", R16(k, DiffFx.Fsw) & ~(ulong)c.UndefinedFsw, R16(b, DiffFx.Fsw) & ~(ulong)c.UndefinedFsw);
            Check(d, "ftw", k[DiffFx.Ftw], b[DiffFx.Ftw]);
            for (int i = 0; i < 8; i++)
            {
                int o = DiffFx.St0 + (16 * i);
                if (!k.AsSpan(o, 10).SequenceEqual(b.AsSpan(o, 10)))
                {
                    d.Add($"st{i}-slot: kvm {Hex(k.AsSpan(o, 10))}, bt {Hex(b.AsSpan(o, 10))}");
                }
            }
        }

        Check(d, "mxcsr", DiffFx.GetMxcsr(k), DiffFx.GetMxcsr(b));
        for (int i = 0; i < 16; i++)
        {
            if ((c.UndefinedXmm & (1 << i)) == 0)
            {
                var kx = DiffFx.GetXmm(k, i);
                var bx = DiffFx.GetXmm(b, i);
                if (kx != bx)
                {
                    d.Add($"xmm{i}: kvm {kx:X32}, bt {bx:X32}");
                }
            }
        }
    }

    private static void CompareBytes(List<string> d, string what, ulong gpa, byte[] k, byte[] b)
    {
        int count = 0;
        for (int i = 0; i < k.Length && count < 4; i++)
        {
            if (k[i] != b[i])
            {
                int start = i & ~7;
                d.Add($"{what} @{gpa + (ulong)start:X}: kvm {BinaryPrimitives.ReadUInt64LittleEndian(k.AsSpan(start)):X16}, bt {BinaryPrimitives.ReadUInt64LittleEndian(b.AsSpan(start)):X16}");
                count++;
                i = start + 7;
            }
        }
    }

    private static void Check(List<string> d, string what, ulong k, ulong b)
    {
        if (k != b)
        {
            d.Add($"{what}: kvm {k:X}, bt {b:X}");
        }
    }

    private static ushort R16(byte[] a, int o) => BinaryPrimitives.ReadUInt16LittleEndian(a.AsSpan(o));

    private static string Hex(ReadOnlySpan<byte> s)
    {
        var sb = new StringBuilder();
        for (int i = s.Length - 1; i >= 0; i--)
        {
            sb.Append(s[i].ToString("X2"));
        }

        return sb.ToString();
    }
}
