// Architectural exception vectors (Intel SDM Vol. 3A §6.3.1, Table 6-1).
namespace Ringvisor.Emulator.Exceptions;

public static class ExceptionVector
{
    public const int DivideError = 0;      // #DE
    public const int Debug = 1;            // #DB
    public const int Nmi = 2;
    public const int Breakpoint = 3;       // #BP
    public const int Overflow = 4;         // #OF
    public const int BoundRange = 5;       // #BR
    public const int InvalidOpcode = 6;    // #UD
    public const int DeviceNotAvailable = 7; // #NM
    public const int DoubleFault = 8;      // #DF
    public const int InvalidTss = 10;      // #TS
    public const int SegmentNotPresent = 11; // #NP
    public const int StackFault = 12;      // #SS
    public const int GeneralProtection = 13; // #GP
    public const int PageFault = 14;       // #PF
    public const int FpuError = 16;        // #MF
    public const int AlignmentCheck = 17;  // #AC
    public const int MachineCheck = 18;    // #MC
    public const int SimdError = 19;       // #XM

    /// <summary>Vectors that push an error code (SDM Vol. 3A Table 6-1).</summary>
    public static bool HasErrorCode(int vector) =>
        vector is DoubleFault or InvalidTss or SegmentNotPresent or StackFault or GeneralProtection or PageFault or AlignmentCheck;

    /// <summary>Contributory exceptions for the double-fault rules (SDM Vol. 3A Table 6-4).</summary>
    public static bool IsContributory(int vector) =>
        vector is DivideError or InvalidTss or SegmentNotPresent or StackFault or GeneralProtection;
}
