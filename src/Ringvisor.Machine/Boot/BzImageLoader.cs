// Linux bzImage through the 64-bit boot protocol (Documentation/arch/x86/boot.rst, "64-bit Boot Protocol"):
// the protected-mode kernel goes to 0x100000 (or pref_address), boot_params gets a copy of the image's setup header
// plus the loader's fields, and the vCPU enters at load address + 0x200 in long mode with RSI = boot_params.
using System.Buffers.Binary;
using Ringvisor.Core.Memory;

namespace Ringvisor.Machine.Boot;

internal static class BzImageLoader
{
    /// <summary>boot.rst: the 64-bit boot protocol and the fields below need protocol 2.12 or later.</summary>
    public const ushort MinimumVersion = 0x020C;

    /// <summary>boot.rst: the 64-bit entry point is 0x200 bytes past the start of the protected-mode kernel.</summary>
    public const ulong Entry64Offset = 0x200;

    /// <summary>boot.rst: "If [setup_sects] is 0, the real value is 4."</summary>
    private const int LegacySetupSects = 4;

    private const int SectorSize = 512;

    /// <summary>End of the setup header fields through init_size (protocol 2.10+), which we read.</summary>
    private const int RequiredHeaderEnd = ZeroPage.InitSize + 4;

    public static bool Detect(ReadOnlySpan<byte> data) =>
        data.Length >= ZeroPage.Header + 4 && BinaryPrimitives.ReadUInt32LittleEndian(data[ZeroPage.Header..]) == ZeroPage.HeaderMagic;

    public static BootResult Load(GuestMemory memory, KernelLoadOptions options, byte[] image)
    {
        string file = options.KernelPath;
        var data = image.AsSpan();
        if (data.Length < RequiredHeaderEnd)
        {
            throw new BootImageException(file, $"file of {data.Length} bytes is too short for a bzImage setup header");
        }

        ushort version = U16(data, ZeroPage.Version);
        if (version < MinimumVersion)
        {
            throw new BootImageException(file, $"boot protocol {version >> 8}.{version & 0xFF:D2} is older than 2.12, which 64-bit boot needs");
        }

        if (U16(data, ZeroPage.BootFlag) != ZeroPage.BootFlagMagic)
        {
            throw new BootImageException(file, $"boot_flag is 0x{U16(data, ZeroPage.BootFlag):X4}, not 0xAA55");
        }

        int headerEnd = ZeroPage.Jump + 2 + data[ZeroPage.Jump + 1];
        if (headerEnd < RequiredHeaderEnd)
        {
            throw new BootImageException(file, $"setup header ends at 0x{headerEnd:X}, before the protocol 2.12 fields");
        }

        if (headerEnd > data.Length)
        {
            throw new BootImageException(file, $"setup header ends at 0x{headerEnd:X}, past the end of the file ({data.Length} bytes)");
        }

        if ((U16(data, ZeroPage.XLoadFlags) & ZeroPage.XlfKernel64) == 0)
        {
            throw new BootImageException(file, "kernel has no 64-bit entry point (XLF_KERNEL_64 is clear in xloadflags)");
        }

        if ((data[ZeroPage.LoadFlags] & ZeroPage.LoadedHigh) == 0)
        {
            throw new BootImageException(file, "zImage kernels (LOADED_HIGH clear) are not supported");
        }

        int setupSects = data[ZeroPage.SetupSects] == 0 ? LegacySetupSects : data[ZeroPage.SetupSects];
        int kernelOffset = (setupSects + 1) * SectorSize;
        if (kernelOffset >= data.Length)
        {
            throw new BootImageException(file, $"setup code ({setupSects} sectors) reaches past the end of the file ({data.Length} bytes)");
        }

        var payload = data[kernelOffset..];
        ulong sysBytes = (ulong)U32(data, ZeroPage.SysSize) * 16;
        if (sysBytes > (ulong)payload.Length)
        {
            throw new BootImageException(file, $"protected-mode kernel is truncated: syssize says {sysBytes} bytes, the file holds {payload.Length}");
        }

        ulong initSize = U32(data, ZeroPage.InitSize);
        ulong extent = ImageFile.PageAlignUp(Math.Max(initSize, (ulong)payload.Length));
        ulong prefAddress = BinaryPrimitives.ReadUInt64LittleEndian(data[ZeroPage.PrefAddress..]);
        bool relocatable = data[ZeroPage.RelocatableKernel] != 0;

        var plan = new BootMemoryPlan(memory);
        var (mpTable, rsdp) = BootSupport.WriteFixedTables(plan, options, longMode: true);
        plan.Claim(BootLayout.ZeroPageAddress, BootLayout.ZeroPageSize, "the zero page", file);

        ulong cmdlineSize = U32(data, ZeroPage.CmdlineSize);
        ulong cmdline = BootSupport.WriteCommandLine(plan, file, options.CommandLine, cmdlineSize);

        ulong load = relocatable && prefAddress != 0 && prefAddress % MemoryLayout.PageSize == 0 && prefAddress < plan.LowRamEnd &&
                     plan.IsFree(prefAddress, extent)
            ? prefAddress
            : BootLayout.HighMemoryAddress;
        plan.Claim(load, extent, "the kernel (init_size)", file);
        plan.Write(load, payload);

        // A kernel that is not relocatable moves itself to pref_address, and a relocatable one decompresses at its
        // aligned load address: keep the initrd clear of init_size bytes from there as well.
        ulong kernelEnd = load + extent;
        ulong runtimeEnd = prefAddress != 0 && initSize <= ulong.MaxValue - prefAddress ? prefAddress + initSize : 0;
        ulong initrdCeiling = Math.Min((ulong)U32(data, ZeroPage.InitrdAddrMax) + 1, plan.LowRamEnd);
        var (initrd, initrdSize, parts) = BootSupport.PlaceInitrd(plan, options.InitrdPaths, Math.Max(kernelEnd, runtimeEnd), initrdCeiling);

        var e820 = E820Map.Build(memory, options.ReservedRanges);
        Span<byte> zp = new byte[BootLayout.ZeroPageSize];
        data[ZeroPage.SetupHeader..Math.Min(headerEnd, ZeroPage.SetupHeaderLimit)].CopyTo(zp[ZeroPage.SetupHeader..]);
        ZeroPage.FillBootFields(zp, cmdline, initrd, initrdSize, e820, rsdp);
        BinaryPrimitives.WriteUInt32LittleEndian(zp[ZeroPage.Code32Start..], (uint)load);
        plan.Write(BootLayout.ZeroPageAddress, zp);

        ulong entry = load + Entry64Offset;
        return new BootResult(
            BootCpu.LongMode(entry, BootLayout.ZeroPageAddress),
            BootFormat.BzImage,
            entry,
            load,
            kernelEnd,
            e820,
            initrd,
            initrdSize,
            parts,
            BootLayout.ZeroPageAddress,
            cmdline,
            mpTable)
        {
            AcpiRsdpAddress = rsdp,
        };
    }

    private static ushort U16(ReadOnlySpan<byte> data, int offset) => BinaryPrimitives.ReadUInt16LittleEndian(data[offset..]);

    private static uint U32(ReadOnlySpan<byte> data, int offset) => BinaryPrimitives.ReadUInt32LittleEndian(data[offset..]);
}
