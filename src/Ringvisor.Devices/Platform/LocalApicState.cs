namespace Ringvisor.Devices.Platform;

/// <summary>
/// Saved state of <see cref="LocalApic"/> (version 1). Vector bitmaps are 8 words of 32 bits (vectors 0-255);
/// <see cref="Lvt"/> is CMCI, timer, thermal, performance, LINT0, LINT1, error. The timer's progress is kept as
/// the nanoseconds elapsed since it was started.
/// </summary>
public sealed record LocalApicState(
    int Version,
    byte Id,
    ulong ApicBase,
    uint Tpr,
    uint Ldr,
    uint Dfr,
    uint Svr,
    IReadOnlyList<uint> Isr,
    IReadOnlyList<uint> Tmr,
    IReadOnlyList<uint> Irr,
    uint Esr,
    uint EsrPending,
    uint IcrLow,
    uint IcrHigh,
    IReadOnlyList<uint> Lvt,
    uint InitialCount,
    uint DivideConfig,
    bool TimerRunning,
    long TimerElapsedNanoseconds,
    ulong TscDeadline,
    int PendingNmis,
    bool InitPending,
    bool StartupPending,
    byte StartupVector);
