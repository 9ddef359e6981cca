namespace Ringvisor.Emulator.Fpu;

/// <summary>Versioned persisted form of <see cref="FpuState"/>: a 512-byte FXSAVE64 image, with FCS/FDS kept in
/// the software-available bytes 464-467.</summary>
public sealed record FpuStateRecord(int Version, byte[] FxImage)
{
    public const int CurrentVersion = 1;
}
