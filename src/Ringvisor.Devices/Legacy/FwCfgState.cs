namespace Ringvisor.Devices.Legacy;

/// <summary>Saved state of <see cref="FwCfg"/>: the selected key and how many of its bytes the guest has read.</summary>
public sealed record FwCfgState(int Version, ushort Selector, int Offset)
{
    public const int CurrentVersion = 1;
}
