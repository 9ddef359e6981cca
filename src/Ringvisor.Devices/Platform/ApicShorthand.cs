namespace Ringvisor.Devices.Platform;

/// <summary>ICR destination shorthand, bits 19:18 (Intel SDM Vol. 3A §10.6.1).</summary>
public enum ApicShorthand
{
    None = 0,
    Self = 1,
    AllIncludingSelf = 2,
    AllExcludingSelf = 3,
}
