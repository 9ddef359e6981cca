using Ringvisor.Core.Bus;
using Ringvisor.Core.Interrupts;

namespace Ringvisor.Devices.Tests.Support;

/// <summary>Byte and dword accessors over IBusDevice, as a guest's IN/OUT and MOV would make them.</summary>
internal static class Io
{
    public static byte In8(this IBusDevice d, ulong offset)
    {
        Span<byte> b = stackalloc byte[1];
        d.Read(offset, b);
        return b[0];
    }

    public static void Out8(this IBusDevice d, ulong offset, byte value) => d.Write(offset, [value]);

    public static uint Read32(this IBusDevice d, ulong offset)
    {
        Span<byte> b = stackalloc byte[4];
        d.Read(offset, b);
        return BitConverter.ToUInt32(b);
    }

    public static void Write32(this IBusDevice d, ulong offset, uint value) => d.Write(offset, BitConverter.GetBytes(value));

    public static void Write16(this IBusDevice d, ulong offset, ushort value) => d.Write(offset, BitConverter.GetBytes(value));

    public static uint Read32(this ILocalInterruptController d, ulong offset)
    {
        Span<byte> b = stackalloc byte[4];
        d.Read(offset, b);
        return BitConverter.ToUInt32(b);
    }

    public static void Write32(this ILocalInterruptController d, ulong offset, uint value) => d.Write(offset, BitConverter.GetBytes(value));
}
