using System.Buffers.Binary;
using System.Text;
using Ringvisor.Machine.Images;

namespace Ringvisor.Machine.Tests.Images;

public sealed class DiskImageTests
{
    // ext4 superblock at byte 1024; s_magic (0xEF53) at offset 0x38 within it (ext4 disk layout, "The Super Block").
    private const int SuperblockMagicOffset = 1024 + 0x38;

    [HostToolFact("mkfs.ext4", "debugfs")]
    public void CreateExt4_WithFiles_FileSystemHoldsThem()
    {
        string dir = Directory.CreateTempSubdirectory("rv-disk-").FullName;
        try
        {
            string image = Path.Combine(dir, "disk.img");
            var files = new Dictionary<string, byte[]>
            {
                ["hello.txt"] = "hello from the host\n"u8.ToArray(),
                ["tests/run.sh"] = DiskImage.TextFile("#!/bin/sh\necho ok\n"),
            };

            DiskImage.CreateExt4(image, 16, files);

            Assert.Equal(16L << 20, new FileInfo(image).Length);
            byte[] head = new byte[2048];
            using (var f = File.OpenRead(image))
            {
                f.ReadExactly(head);
            }

            Assert.Equal(0xEF53, BinaryPrimitives.ReadUInt16LittleEndian(head.AsSpan(SuperblockMagicOffset)));
            var (rc, stdout, stderr) = HostTools.Run("debugfs", ["-R", "cat /hello.txt", image]);
            Assert.True(rc == 0, stderr);
            Assert.Equal("hello from the host\n", stdout);
            var (rc2, stat, _) = HostTools.Run("debugfs", ["-R", "stat /tests/run.sh", image]);
            Assert.Equal(0, rc2);
            Assert.Contains("Mode:  0755", stat, StringComparison.Ordinal);
            Assert.Empty(Directory.GetFiles(dir, "*.tmp-*"));
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    [Theory]
    [InlineData("../escape")]
    [InlineData("/etc/passwd")]
    [InlineData("a/./b")]
    public void CreateExt4_UnsafeFileName_ThrowsArgumentAndLeavesNoFile(string name)
    {
        string dir = Directory.CreateTempSubdirectory("rv-disk-").FullName;
        try
        {
            string image = Path.Combine(dir, "disk.img");

            Assert.Throws<ArgumentException>(() => DiskImage.CreateExt4(image, 8, new Dictionary<string, byte[]> { [name] = [1] }));
            Assert.Empty(Directory.GetFiles(dir));
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    [Fact]
    public void CreateExt4_TooSmall_ThrowsArgumentOutOfRange()
    {
        Assert.Throws<ArgumentOutOfRangeException>(() => DiskImage.CreateExt4("/tmp/never.img", 1, null));
    }

    [Fact]
    public void TextFile_CrLf_ConvertedToLf()
    {
        Assert.Equal("a\nb\n", Encoding.UTF8.GetString(DiskImage.TextFile("a\r\nb\r\n")));
    }
}
