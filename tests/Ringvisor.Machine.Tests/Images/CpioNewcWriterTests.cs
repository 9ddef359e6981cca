using System.Text;
using Ringvisor.Machine.Images;

namespace Ringvisor.Machine.Tests.Images;

public sealed class CpioNewcWriterTests
{
    private static byte[] BuildSample(bool withDevices)
    {
        using var ms = new MemoryStream();
        using (var w = new CpioNewcWriter(ms, modificationTime: 1_700_000_000, leaveOpen: true))
        {
            w.AddDirectory("bin");
            w.AddFile("bin/hello", "hello, world\n"u8, 0x1ED);
            w.AddSymlink("bin/sh", "hello");
            w.AddFile("etc/deep/config", "odd length!"u8); // parents etc, etc/deep created implicitly
            w.AddFile("empty", ReadOnlySpan<byte>.Empty);
            if (withDevices)
            {
                w.AddCharacterDevice("dev/console", 5, 1);
                w.AddCharacterDevice("dev/ttyS0", 4, 64, 0x1B0);
            }
        }

        return ms.ToArray();
    }

    [Fact]
    public void Write_FilesDirsLinksDevices_HeadersParseWithExpectedFields()
    {
        var entries = CpioTestReader.Read(BuildSample(withDevices: true));

        Assert.Equal(
            ["bin", "bin/hello", "bin/sh", "etc", "etc/deep", "etc/deep/config", "empty", "dev", "dev/console", "dev/ttyS0"],
            entries.Select(e => e.Name));
        var hello = entries.Single(e => e.Name == "bin/hello");
        Assert.Equal(0x8000u | 0x1ED, hello.Mode); // S_IFREG | 0755
        Assert.Equal("hello, world\n", Encoding.ASCII.GetString(hello.Data));
        var link = entries.Single(e => e.Name == "bin/sh");
        Assert.Equal(0xA000u, link.Mode & 0xF000);
        Assert.Equal("hello", Encoding.ASCII.GetString(link.Data));
        var console = entries.Single(e => e.Name == "dev/console");
        Assert.Equal(0x2000u | 0x180, console.Mode); // S_IFCHR | 0600
        Assert.Equal((5u, 1u), (console.RdevMajor, console.RdevMinor));
        var tty = entries.Single(e => e.Name == "dev/ttyS0");
        Assert.Equal((4u, 64u), (tty.RdevMajor, tty.RdevMinor));
        Assert.All(entries.Where(e => (e.Mode & 0xF000) == 0x4000), d => Assert.Equal(2u, d.Nlink));
        Assert.Equal(entries.Count, entries.Select(e => e.Inode).Distinct().Count());
    }

    [Fact]
    public void Write_Header_HasMtimeAndNameSizeAtNewcOffsets()
    {
        byte[] archive = BuildSample(withDevices: false);

        // First entry "bin": fields are 8 hex digits after the 6-byte magic; mtime is field 5, namesize field 11.
        string header = Encoding.ASCII.GetString(archive, 0, 110);
        Assert.Equal(1_700_000_000u.ToString("x8"), header.Substring(6 + 5 * 8, 8));
        Assert.Equal("00000004", header.Substring(6 + 11 * 8, 8)); // "bin" + NUL
        Assert.Equal("bin\0", Encoding.ASCII.GetString(archive, 110, 4));
    }

    [Fact]
    public void AddFile_SameNameTwice_Throws()
    {
        using var w = new CpioNewcWriter(new MemoryStream());
        w.AddFile("a", "1"u8);
        Assert.Throws<ArgumentException>(() => w.AddFile("/a", "2"u8));
    }

    [Theory]
    [InlineData("../etc/passwd")]
    [InlineData("a/../../b")]
    [InlineData("")]
    [InlineData("/")]
    [InlineData("a//b")]
    [InlineData("TRAILER!!!")]
    public void AddFile_UnsafeName_Throws(string name)
    {
        using var w = new CpioNewcWriter(new MemoryStream());
        Assert.Throws<ArgumentException>(() => w.AddFile(name, "x"u8));
    }

    [Fact]
    public void AddFile_AfterFinish_Throws()
    {
        using var w = new CpioNewcWriter(new MemoryStream());
        w.Finish();
        Assert.Throws<InvalidOperationException>(() => w.AddFile("a", "x"u8));
    }

    [HostToolFact("cpio")]
    public void Write_Archive_HostCpioListsEveryEntryWithTypes()
    {
        var (rc, stdout, stderr) = HostTools.Run("cpio", ["-t", "-v", "--quiet"], BuildSample(withDevices: true));

        Assert.True(rc == 0, stderr);
        var lines = stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Equal(10, lines.Length);
        Assert.Contains(lines, l => l.StartsWith("crw-------", StringComparison.Ordinal) && l.Contains("5,", StringComparison.Ordinal) && l.EndsWith("dev/console", StringComparison.Ordinal));
        Assert.Contains(lines, l => l.StartsWith("lrwxrwxrwx", StringComparison.Ordinal) && l.EndsWith("bin/sh -> hello", StringComparison.Ordinal));
        Assert.Contains(lines, l => l.StartsWith("-rwxr-xr-x", StringComparison.Ordinal) && l.EndsWith("bin/hello", StringComparison.Ordinal));
        Assert.Contains(lines, l => l.StartsWith("drwxr-xr-x", StringComparison.Ordinal) && l.EndsWith("etc/deep", StringComparison.Ordinal));
    }

    [HostToolFact("cpio")]
    public void Write_Archive_HostCpioExtractsSameContent()
    {
        string dir = Directory.CreateTempSubdirectory("rv-cpio-").FullName;
        try
        {
            var (rc, _, stderr) = HostTools.Run("cpio", ["-i", "-d", "--quiet", "--no-absolute-filenames"], BuildSample(withDevices: false), dir);

            Assert.True(rc == 0, stderr);
            Assert.Equal("hello, world\n", File.ReadAllText(Path.Combine(dir, "bin/hello")));
            Assert.Equal("odd length!", File.ReadAllText(Path.Combine(dir, "etc/deep/config")));
            Assert.Equal(0, new FileInfo(Path.Combine(dir, "empty")).Length);
            Assert.Equal("hello", new FileInfo(Path.Combine(dir, "bin/sh")).LinkTarget);
            if (!OperatingSystem.IsWindows())
            {
                Assert.Equal((UnixFileMode)0x1ED, File.GetUnixFileMode(Path.Combine(dir, "bin/hello")));
            }
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }
}
