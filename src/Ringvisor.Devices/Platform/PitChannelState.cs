namespace Ringvisor.Devices.Platform;

/// <summary>Saved state of one 8254 counter. <see cref="ElapsedNanoseconds"/> is the time counted since the count was loaded.</summary>
public sealed record PitChannelState(
    int Mode,
    int AccessMode,
    bool Bcd,
    int Reload,
    bool Armed,
    bool Counting,
    bool Gate,
    long ElapsedNanoseconds,
    bool WriteHighNext,
    bool ReadHighNext,
    int LatchedCount,
    bool LatchedHighNext,
    int LatchedStatus,
    bool NullCount,
    byte PartialWrite);
