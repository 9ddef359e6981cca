// struct boot_params ("the zero page") and the setup header inside it: field offsets from
// Documentation/arch/x86/zero-page.rst and Documentation/arch/x86/boot.rst, and the fields a 64-bit boot loader
// fills in.
using System.Buffers.Binary;

namespace Ringvisor.Machine.Boot;

public static class ZeroPage
{
    // zero-page.rst
    /// <summary>zero-page.rst: acpi_rsdp_addr (u64), honoured from boot protocol 2.14.</summary>
    public const int AcpiRsdpAddr = 0x070;
    public const int ExtRamdiskImage = 0x0C0;
    public const int ExtRamdiskSize = 0x0C4;
    public const int ExtCmdLinePtr = 0x0C8;
    public const int E820EntriesOffset = 0x1E8;
    public const int Sentinel = 0x1EF;
    public const int SetupHeader = 0x1F1;
    public const int E820Table = 0x2D0;
    public const int E820EntrySize = 20;

    /// <summary>zero-page.rst: edd_mbr_sig_buffer follows the setup header at 0x290; never copy a header past it.</summary>
    public const int SetupHeaderLimit = 0x290;

    // boot.rst, "The Real-Mode Kernel Header" (offsets within the zero page = offsets within the bzImage file).
    public const int SetupSects = 0x1F1;
    public const int SysSize = 0x1F4;
    public const int VidMode = 0x1FA;
    public const int BootFlag = 0x1FE;
    public const int Jump = 0x200;
    public const int Header = 0x202;
    public const int Version = 0x206;
    public const int TypeOfLoader = 0x210;
    public const int LoadFlags = 0x211;
    public const int Code32Start = 0x214;
    public const int RamdiskImage = 0x218;
    public const int RamdiskSize = 0x21C;
    public const int HeapEndPtr = 0x224;
    public const int CmdLinePtr = 0x228;
    public const int InitrdAddrMax = 0x22C;
    public const int KernelAlignment = 0x230;
    public const int RelocatableKernel = 0x234;
    public const int XLoadFlags = 0x236;
    public const int CmdlineSize = 0x238;
    public const int PrefAddress = 0x258;
    public const int InitSize = 0x260;

    /// <summary>"HdrS" read as a little-endian dword.</summary>
    public const uint HeaderMagic = 0x5372_6448;
    public const ushort BootFlagMagic = 0xAA55;

    /// <summary>boot.rst: 0xFF = undefined/unregistered boot loader.</summary>
    public const byte LoaderUndefined = 0xFF;

    // boot.rst, loadflags.
    public const byte LoadedHigh = 0x01;
    public const byte KeepSegments = 0x40;
    public const byte CanUseHeap = 0x80;

    // boot.rst, xloadflags.
    public const ushort XlfKernel64 = 0x0001;
    public const ushort XlfCanBeLoadedAbove4G = 0x0002;

    /// <summary>boot.rst: heap_end_ptr is the end of the setup heap minus 0x200, counted from the real-mode code.</summary>
    public const ushort DefaultHeapEnd = 0xFE00;

    /// <summary>boot.rst: initrd_addr_max for kernels that do not state one (protocol &lt; 2.03).</summary>
    public const uint DefaultInitrdAddrMax = 0x37FF_FFFF;

    /// <summary>Linux x86 COMMAND_LINE_SIZE (2048) less the terminating NUL, for images without a setup header.</summary>
    public const uint DefaultCmdlineSize = 2047;

    /// <summary>Fills the fields every 64-bit Linux boot sets: loader type, command line, initrd and e820 map.</summary>
    internal static void FillBootFields(Span<byte> zp, ulong cmdLine, ulong initrdAddress, ulong initrdSize, IReadOnlyList<E820Entry> e820, ulong rsdp)
    {
        BinaryPrimitives.WriteUInt64LittleEndian(zp[AcpiRsdpAddr..], rsdp);
        zp[TypeOfLoader] = LoaderUndefined;
        zp[LoadFlags] = (byte)((zp[LoadFlags] | LoadedHigh | CanUseHeap) & ~KeepSegments);
        BinaryPrimitives.WriteUInt16LittleEndian(zp[HeapEndPtr..], DefaultHeapEnd);
        BinaryPrimitives.WriteUInt32LittleEndian(zp[CmdLinePtr..], (uint)cmdLine);
        BinaryPrimitives.WriteUInt32LittleEndian(zp[ExtCmdLinePtr..], (uint)(cmdLine >> 32));
        BinaryPrimitives.WriteUInt32LittleEndian(zp[RamdiskImage..], (uint)initrdAddress);
        BinaryPrimitives.WriteUInt32LittleEndian(zp[ExtRamdiskImage..], (uint)(initrdAddress >> 32));
        BinaryPrimitives.WriteUInt32LittleEndian(zp[RamdiskSize..], (uint)initrdSize);
        BinaryPrimitives.WriteUInt32LittleEndian(zp[ExtRamdiskSize..], (uint)(initrdSize >> 32));

        zp[E820EntriesOffset] = (byte)e820.Count;
        for (int i = 0; i < e820.Count; i++)
        {
            var entry = zp[(E820Table + (i * E820EntrySize))..];
            BinaryPrimitives.WriteUInt64LittleEndian(entry, e820[i].Address);
            BinaryPrimitives.WriteUInt64LittleEndian(entry[8..], e820[i].Size);
            BinaryPrimitives.WriteUInt32LittleEndian(entry[16..], (uint)e820[i].Type);
        }
    }
}
