// A synthetic bzImage: a real-mode sector area with a boot protocol 2.15 setup header (Documentation/arch/x86/boot.rst)
// followed by a "protected-mode kernel" whose 64-bit entry (offset 0x200) holds an Iced-assembled stub.
using System.Buffers.Binary;

namespace Ringvisor.Machine.Tests.Boot;

internal sealed class FakeBzImage
{
    public const int HeaderEnd = 0x26C;

    public byte SetupSects { get; set; } = 4;

    public ushort Version { get; set; } = 0x020F;

    public ushort BootFlag { get; set; } = 0xAA55;

    public uint Magic { get; set; } = 0x53726448;

    public byte LoadFlags { get; set; } = 0x01;

    public ushort XLoadFlags { get; set; } = 0x0003;

    public ushort VidMode { get; set; } = 0xFFFF;

    public uint InitrdAddrMax { get; set; } = 0x7FFF_FFFF;

    public uint KernelAlignment { get; set; } = 0x20_0000;

    public byte Relocatable { get; set; } = 1;

    public uint CmdlineSize { get; set; } = 2047;

    public ulong PrefAddress { get; set; } = 0x100_0000;

    public uint InitSize { get; set; } = 0x40_0000;

    /// <summary>Protected-mode kernel bytes; default: 0x1000 bytes of pattern with the entry stub at 0x200.</summary>
    public byte[]? Payload { get; set; }

    /// <summary>syssize in 16-byte units; default = the payload length.</summary>
    public uint? SysSize { get; set; }

    public static byte[] DefaultPayload(ulong loadAddress)
    {
        var payload = new byte[0x1000];
        for (int i = 0; i < payload.Length; i++)
        {
            payload[i] = TempFiles.Pattern(i, 3);
        }

        GuestCode.LongModeStub(loadAddress + 0x200).CopyTo(payload, 0x200);
        return payload;
    }

    public byte[] Build()
    {
        byte[] payload = Payload ?? DefaultPayload(PrefAddress);
        int setup = ((SetupSects == 0 ? 4 : SetupSects) + 1) * 512;
        var image = new byte[setup + payload.Length];
        var s = image.AsSpan();
        s[0x1F1] = SetupSects;
        BinaryPrimitives.WriteUInt32LittleEndian(s[0x1F4..], SysSize ?? (uint)((payload.Length + 15) / 16));
        BinaryPrimitives.WriteUInt16LittleEndian(s[0x1FA..], VidMode);
        BinaryPrimitives.WriteUInt16LittleEndian(s[0x1FE..], BootFlag);
        s[0x200] = 0xEB; // jmp short over the header
        s[0x201] = HeaderEnd - 0x202;
        BinaryPrimitives.WriteUInt32LittleEndian(s[0x202..], Magic);
        BinaryPrimitives.WriteUInt16LittleEndian(s[0x206..], Version);
        s[0x211] = LoadFlags;
        BinaryPrimitives.WriteUInt32LittleEndian(s[0x214..], 0x100000);
        BinaryPrimitives.WriteUInt32LittleEndian(s[0x22C..], InitrdAddrMax);
        BinaryPrimitives.WriteUInt32LittleEndian(s[0x230..], KernelAlignment);
        s[0x234] = Relocatable;
        BinaryPrimitives.WriteUInt16LittleEndian(s[0x236..], XLoadFlags);
        BinaryPrimitives.WriteUInt32LittleEndian(s[0x238..], CmdlineSize);
        BinaryPrimitives.WriteUInt64LittleEndian(s[0x258..], PrefAddress);
        BinaryPrimitives.WriteUInt32LittleEndian(s[0x260..], InitSize);
        // A marker in the last header byte we copy, to check the copy's extent.
        s[HeaderEnd - 1] = 0x5A;
        payload.CopyTo(s[setup..]);
        return image;
    }
}
