namespace Ringvisor.Devices.Legacy;

/// <summary>
/// Saved state of <see cref="CmosRtc"/> (version 1). <see cref="GuestTime"/> is the RTC's time of day when saved; on
/// restore the clock resumes from it.
/// </summary>
public sealed record CmosRtcState(
    int Version,
    IReadOnlyList<byte> Ram,
    byte Index,
    bool NmiDisabled,
    byte RegisterA,
    byte RegisterB,
    byte RegisterC,
    DateTime GuestTime);
