// What one engine left behind after a case: how it ended, the register file, the FXSAVE dump and the memory compared.
namespace Ringvisor.Emulator.Tests.Differential;

internal sealed class DiffOutcome
{
    /// <summary>"done", "#n" for exception vector n, or a failure description (hang, engine error).</summary>
    public required string Exit { get; init; }

    /// <summary>The exception vector, or -1 when the case ran to its end (or failed).</summary>
    public int Vector { get; init; } = -1;

    public ulong ErrorCode { get; init; }

    /// <summary>RIP, RFLAGS and RSP in the exception frame.</summary>
    public ulong FaultRip { get; init; }

    public ulong FrameRflags { get; init; }

    public ulong FrameRsp { get; init; }

    public ulong Cr2 { get; init; }

    public ulong[] Gpr { get; init; } = new ulong[16];

    /// <summary>RIP at the end (the address of the final OUT for a normal end, of the dump stub's OUT after an exception).</summary>
    public ulong Rip { get; init; }

    public ulong Rflags { get; init; }

    public byte[] Fx { get; init; } = [];

    public byte[] Data { get; init; } = [];

    public byte[] Stack { get; init; } = [];

    public bool Failed => Exit != "done" && Vector < 0;
}
