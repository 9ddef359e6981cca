// The multiboot v1 header and information structure layouts (The Multiboot Specification 0.6.96, §3.1 and §3.3).
namespace Ringvisor.Machine.Boot;

public static class MultibootInfo
{
    /// <summary>§3.1.1: the header's magic field.</summary>
    public const uint HeaderMagic = 0x1BAD_B002;

    /// <summary>§3.2: EAX holds this value when the OS image is entered.</summary>
    public const uint BootloaderMagic = 0x2BAD_B002;

    /// <summary>§3.1.1: the header must lie within the first 8192 bytes, 32-bit aligned.</summary>
    public const int HeaderSearchLimit = 8192;

    // §3.1.2 header flags. Bits 0-15 are requirements the loader must meet or refuse; bits 16-31 are optional.
    public const uint FlagPageAlignModules = 1u << 0;
    public const uint FlagMemoryInfo = 1u << 1;
    public const uint FlagVideoMode = 1u << 2;
    public const uint FlagAddressFields = 1u << 16;
    public const uint RequiredFlagsMask = 0x0000_FFFF;

    // §3.1.3 header offsets of the address fields (valid with flag 16).
    public const int HeaderAddr = 12;
    public const int LoadAddr = 16;
    public const int LoadEndAddr = 20;
    public const int BssEndAddr = 24;
    public const int EntryAddr = 28;
    public const int AddressHeaderSize = 32;

    // §3.3 information structure flags.
    public const uint InfoMemory = 1u << 0;
    public const uint InfoCmdline = 1u << 2;
    public const uint InfoMods = 1u << 3;
    public const uint InfoMmap = 1u << 6;
    public const uint InfoBootLoaderName = 1u << 9;

    // §3.3 information structure offsets.
    public const int Flags = 0;
    public const int MemLower = 4;
    public const int MemUpper = 8;
    public const int Cmdline = 16;
    public const int ModsCount = 20;
    public const int ModsAddr = 24;
    public const int MmapLength = 44;
    public const int MmapAddr = 48;
    public const int BootLoaderName = 64;
    public const int Size = 88;

    /// <summary>§3.3: mod_start, mod_end, string, reserved.</summary>
    public const int ModuleEntrySize = 16;

    /// <summary>§3.3: size (u32, not counting itself = 20), base_addr (u64), length (u64), type (u32).</summary>
    public const int MmapEntrySize = 24;
    public const uint MmapEntrySizeField = 20;

    /// <summary>How many modules fit between the module list address and the memory map.</summary>
    public const int MaxModules = (int)(BootLayout.BootInfoMemoryMapAddress - BootLayout.BootInfoModulesAddress) / ModuleEntrySize;

    /// <summary>The boot_loader_name we report.</summary>
    public const string LoaderName = "Ringvisor";
}
