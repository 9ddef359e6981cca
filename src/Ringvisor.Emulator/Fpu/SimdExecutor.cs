using System.Runtime.Intrinsics;
using Iced.Intel;
using Ringvisor.Core.Cpu;

namespace Ringvisor.Emulator.Fpu;

/// <summary>
/// Executes x87, MMX, SSE, SSE2, SSE3 and SSSE3 instructions (legacy encodings) plus FXSAVE/FXRSTOR,
/// LDMXCSR/STMXCSR, EMMS and FWAIT against an <see cref="FpuState"/>. The interpreter core decodes with Iced, asks
/// <see cref="Handles"/> and calls <see cref="Execute"/>; it supplies memory, GPRs and control registers through
/// <see cref="ISimdOperandAccess"/>. Exception gating follows Intel SDM Vol. 3A 2.5 and Vol. 1 13.1
/// (CR0.EM/TS/MP, CR4.OSFXSR/OSXMMEXCPT); the families live in the other SimdExecutor.*.cs files.
/// </summary>
public static partial class SimdExecutor
{
    private const ulong Cr0Mp = 1UL << 1; // SDM Vol. 3A 2.5
    private const ulong Cr0Em = 1UL << 2;
    private const ulong Cr0Ts = 1UL << 3;

    /// <summary>How an instruction is gated before it runs (SDM Vol. 3A Table 2-2, Vol. 1 Tables 13-1/22-x).</summary>
    private enum GateClass : byte
    {
        None,
        X87,
        X87NoWait,
        Wait,
        Mmx,
        Sse,
        SseWithMmx,
        FxSaveRestore,
    }

    private static readonly GateClass[] s_gate = BuildGateTable();

    /// <summary>Codes that exist only with SSE4.1 (executed only when <see cref="FpuState.Sse41Enabled"/>).</summary>
    private static readonly bool[] s_sse41Only = BuildSse41Table();

    /// <summary>True when <see cref="Execute"/> implements <paramref name="code"/>. Everything else the core should
    /// treat as its own or as #UD.</summary>
    public static bool Handles(Code code) => (uint)code < (uint)s_gate.Length && s_gate[(int)code] != GateClass.None;

    /// <summary>
    /// Executes one instruction. On <see cref="SimdOutcome.Ok"/> the core advances RIP; on any other value it raises
    /// the matching exception (except <see cref="SimdOutcome.MemoryFaulted"/>, already raised) without advancing.
    /// </summary>
    public static SimdOutcome Execute(in Instruction instruction, FpuState state, ISimdOperandAccess access)
    {
        ArgumentNullException.ThrowIfNull(state);
        ArgumentNullException.ThrowIfNull(access);
        var code = instruction.Code;
        if (!Handles(code))
        {
            return SimdOutcome.InvalidOpcode;
        }

        if (s_sse41Only[(int)code] && !state.Sse41Enabled)
        {
            return SimdOutcome.InvalidOpcode;
        }

        var gate = s_gate[(int)code];
        var outcome = CheckGate(gate, state, access);
        if (outcome != SimdOutcome.Ok)
        {
            return outcome;
        }

        switch (gate)
        {
            case GateClass.X87:
            case GateClass.X87NoWait:
                return ExecuteX87(in instruction, state, access);
            case GateClass.Wait:
                return SimdOutcome.Ok;
            case GateClass.FxSaveRestore:
                return ExecuteFxSaveRestore(in instruction, state, access);
            default:
                outcome = ExecuteVector(in instruction, state, access);
                // x87-to-MMX transition (SDM Vol. 1 9.5.1); CVTPI2PS/PD with a memory source do not make it.
                if (outcome == SimdOutcome.Ok && instruction.Mnemonic != Mnemonic.Emms
                    && (gate == GateClass.Mmx || (gate == GateClass.SseWithMmx && UsesMmRegister(in instruction))))
                {
                    state.EnterMmxMode();
                }

                return outcome;
        }
    }

    private static SimdOutcome CheckGate(GateClass gate, FpuState state, ISimdOperandAccess access)
    {
        var cr0 = access.Cr0;
        var pendingX87 = (state.Fsw & FpuState.FswEs) != 0;
        switch (gate)
        {
            case GateClass.X87:
                if ((cr0 & (Cr0Em | Cr0Ts)) != 0)
                {
                    return SimdOutcome.DeviceNotAvailable;
                }

                return pendingX87 ? SimdOutcome.FloatingPointError : SimdOutcome.Ok;
            case GateClass.X87NoWait:
            case GateClass.FxSaveRestore:
                return (cr0 & (Cr0Em | Cr0Ts)) != 0 ? SimdOutcome.DeviceNotAvailable : SimdOutcome.Ok;
            case GateClass.Wait:
                if ((cr0 & (Cr0Mp | Cr0Ts)) == (Cr0Mp | Cr0Ts))
                {
                    return SimdOutcome.DeviceNotAvailable;
                }

                return pendingX87 ? SimdOutcome.FloatingPointError : SimdOutcome.Ok;
            case GateClass.Mmx:
                if ((cr0 & Cr0Em) != 0)
                {
                    return SimdOutcome.InvalidOpcode;
                }

                if ((cr0 & Cr0Ts) != 0)
                {
                    return SimdOutcome.DeviceNotAvailable;
                }

                return pendingX87 ? SimdOutcome.FloatingPointError : SimdOutcome.Ok;
            case GateClass.Sse:
            case GateClass.SseWithMmx:
                if ((cr0 & Cr0Em) != 0 || (access.Cr4 & SystemRegisters.Cr4Osfxsr) == 0)
                {
                    return SimdOutcome.InvalidOpcode;
                }

                if ((cr0 & Cr0Ts) != 0)
                {
                    return SimdOutcome.DeviceNotAvailable;
                }

                return gate == GateClass.SseWithMmx && pendingX87 ? SimdOutcome.FloatingPointError : SimdOutcome.Ok;
            default:
                return SimdOutcome.InvalidOpcode;
        }
    }

    /// <summary>#XM when CR4.OSXMMEXCPT = 1, else #UD (SDM Vol. 3A 6.15, interrupt 19).</summary>
    private static SimdOutcome SimdFault(ISimdOperandAccess access) =>
        (access.Cr4 & SystemRegisters.Cr4Osxmmexcpt) != 0
            ? SimdOutcome.SimdFloatingPointException
            : SimdOutcome.InvalidOpcode;

    private static GateClass[] BuildGateTable()
    {
        var implemented = new HashSet<Mnemonic>(ImplementedVectorMnemonics());
        var x87 = new HashSet<Mnemonic>(ImplementedX87Mnemonics());
        var table = new GateClass[Enum.GetValues<Code>().Length];
        for (var i = 0; i < table.Length; i++)
        {
            var code = (Code)i;
            if (code.Encoding() != EncodingKind.Legacy)
            {
                continue;
            }

            if (code == Code.Wait)
            {
                table[i] = GateClass.Wait;
                continue;
            }

            var mnemonic = code.Mnemonic();
            var features = code.CpuidFeatures();
            if (features.Contains(CpuidFeature.FXSR))
            {
                table[i] = GateClass.FxSaveRestore;
                continue;
            }

            var isFpu = false;
            var isSimd = false;
            foreach (var f in features)
            {
                isFpu |= f is CpuidFeature.FPU or CpuidFeature.FPU287 or CpuidFeature.FPU387;
                isSimd |= f is CpuidFeature.MMX or CpuidFeature.SSE or CpuidFeature.SSE2 or CpuidFeature.SSE3
                    or CpuidFeature.SSSE3 or CpuidFeature.SSE4_1;
            }

            if (isFpu)
            {
                if (x87.Contains(mnemonic) && !features.Contains(CpuidFeature.FPU287XL_ONLY)
                    && !features.Contains(CpuidFeature.FPU387SL_ONLY) && !features.Contains(CpuidFeature.CYRIX_FPU))
                {
                    table[i] = IsNonWaitingX87(code) ? GateClass.X87NoWait : GateClass.X87;
                }

                continue;
            }

            if (!isSimd || !implemented.Contains(mnemonic))
            {
                continue;
            }

            table[i] = ClassifySimd(code);
        }

        return table;
    }

    private static bool[] BuildSse41Table()
    {
        var table = new bool[Enum.GetValues<Code>().Length];
        for (var i = 0; i < table.Length; i++)
        {
            var code = (Code)i;
            table[i] = code.Encoding() == EncodingKind.Legacy && code.CpuidFeatures().Contains(CpuidFeature.SSE4_1);
        }

        return table;
    }

    private static bool IsNonWaitingX87(Code code) => code switch
    {
        Code.Fnstenv_m14byte or Code.Fnstenv_m28byte or Code.Fnsave_m94byte or Code.Fnsave_m108byte
            or Code.Fnstcw_m2byte or Code.Fnstsw_m2byte or Code.Fnstsw_AX or Code.Fnclex or Code.Fninit
            or Code.Fneni or Code.Fndisi or Code.Fnsetpm => true,
        _ => false,
    };

    private static GateClass ClassifySimd(Code code)
    {
        var op = code.ToOpCode();
        var hasMm = false;
        var hasXmm = false;
        for (var i = 0; i < op.OpCount; i++)
        {
            switch (op.GetOpKind(i))
            {
                case OpCodeOperandKind.mm_or_mem:
                case OpCodeOperandKind.mm_reg:
                case OpCodeOperandKind.mm_rm:
                    hasMm = true;
                    break;
                case OpCodeOperandKind.xmm_or_mem:
                case OpCodeOperandKind.xmm_reg:
                case OpCodeOperandKind.xmm_rm:
                    hasXmm = true;
                    break;
            }
        }

        if (code.Mnemonic() == Mnemonic.Emms)
        {
            return GateClass.Mmx;
        }

        if (hasXmm || code.Mnemonic() is Mnemonic.Ldmxcsr or Mnemonic.Stmxcsr)
        {
            return hasMm ? GateClass.SseWithMmx : GateClass.Sse;
        }

        return hasMm ? GateClass.Mmx : GateClass.None;
    }
}
