// Little helpers to read guest memory in assertions.
using System.Buffers.Binary;
using Ringvisor.Core.Memory;

namespace Ringvisor.Machine.Tests.Boot;

internal static class GuestReader
{
    public static byte[] Bytes(this GuestMemory memory, ulong gpa, int length)
    {
        var data = new byte[length];
        Assert.Equal(MemoryAccessResult.Ok, memory.Read(gpa, data));
        return data;
    }

    public static byte U8(this GuestMemory memory, ulong gpa) => memory.Bytes(gpa, 1)[0];

    public static ushort U16(this GuestMemory memory, ulong gpa) => BinaryPrimitives.ReadUInt16LittleEndian(memory.Bytes(gpa, 2));

    public static uint U32(this GuestMemory memory, ulong gpa) => BinaryPrimitives.ReadUInt32LittleEndian(memory.Bytes(gpa, 4));

    public static ulong U64(this GuestMemory memory, ulong gpa) => BinaryPrimitives.ReadUInt64LittleEndian(memory.Bytes(gpa, 8));

    /// <summary>The NUL-terminated ASCII string at <paramref name="gpa"/>.</summary>
    public static string CString(this GuestMemory memory, ulong gpa)
    {
        var bytes = new List<byte>();
        for (ulong a = gpa; ; a++)
        {
            byte b = memory.U8(a);
            if (b == 0)
            {
                return System.Text.Encoding.ASCII.GetString([.. bytes]);
            }

            bytes.Add(b);
        }
    }
}
