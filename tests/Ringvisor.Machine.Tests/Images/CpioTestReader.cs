// An independent, strict parser of newc archives for the tests (cpio(5) "New ASCII Format"): checks the magic,
// field syntax, 4-byte alignment of names and data, and that the archive ends with TRAILER!!!.
using System.Globalization;
using System.IO.Compression;
using System.Text;

namespace Ringvisor.Machine.Tests.Images;

internal static class CpioTestReader
{
    public static List<CpioEntry> Read(byte[] archive)
    {
        var entries = new List<CpioEntry>();
        int pos = 0;
        while (true)
        {
            Assert.True(pos % 4 == 0, $"header at {pos} is not 4-byte aligned");
            Assert.True(pos + 110 <= archive.Length, $"archive ends inside a header at {pos}");
            string header = Encoding.ASCII.GetString(archive, pos, 110);
            Assert.Equal("070701", header[..6]);
            uint Field(int i) => uint.Parse(header.AsSpan(6 + i * 8, 8), NumberStyles.HexNumber, CultureInfo.InvariantCulture);
            uint ino = Field(0), mode = Field(1), nlink = Field(4), size = Field(6), rmaj = Field(9), rmin = Field(10), namesize = Field(11);
            Assert.Equal(0u, Field(12)); // check field unused in 070701
            int nameStart = pos + 110;
            Assert.Equal(0, archive[nameStart + (int)namesize - 1]);
            string name = Encoding.UTF8.GetString(archive, nameStart, (int)namesize - 1);
            int dataStart = Align4(nameStart + (int)namesize);
            for (int i = nameStart + (int)namesize; i < dataStart; i++)
            {
                Assert.Equal(0, archive[i]);
            }

            if (name == "TRAILER!!!")
            {
                Assert.Equal(0u, size);
                Assert.Equal(archive.Length, dataStart);
                return entries;
            }

            byte[] data = archive.AsSpan(dataStart, (int)size).ToArray();
            entries.Add(new CpioEntry(name, ino, mode, nlink, rmaj, rmin, data, pos));
            pos = Align4(dataStart + (int)size);
        }
    }

    public static List<CpioEntry> ReadGzip(string path)
    {
        using var file = File.OpenRead(path);
        using var gz = new GZipStream(file, CompressionMode.Decompress);
        using var ms = new MemoryStream();
        gz.CopyTo(ms);
        return Read(ms.ToArray());
    }

    private static int Align4(int x) => (x + 3) & ~3;
}
