using Ringvisor.Devices.Virtio.Block;

namespace Ringvisor.Devices.Tests.Virtio;

public sealed class BlockImageTests : IDisposable
{
    private readonly string _path = Path.Combine(Path.GetTempPath(), $"rv-img-{Guid.NewGuid():N}.img");

    public BlockImageTests() => File.WriteAllBytes(_path, new byte[4096]);

    public void Dispose() => File.Delete(_path);

    [Fact]
    public void Open_WritableImageAlreadyLocked_ThrowsNamingTheFile()
    {
        using var first = BlockImage.Open(_path, readOnly: false);
        var e = Assert.Throws<IOException>(() => BlockImage.Open(_path, readOnly: false));
        Assert.Contains(_path, e.Message);
        Assert.Contains("locked", e.Message);
    }

    [Fact]
    public void Open_ReadOnlyWhileWriterHoldsIt_ThrowsLocked()
    {
        using var writer = BlockImage.Open(_path, readOnly: false);
        var e = Assert.Throws<IOException>(() => BlockImage.Open(_path, readOnly: true));
        Assert.Contains("locked", e.Message);
    }

    [Fact]
    public void Open_TwoReadOnlyUsers_BothSucceed()
    {
        using var a = BlockImage.Open(_path, readOnly: true);
        using var b = BlockImage.Open(_path, readOnly: true);
        Assert.True(a.ReadOnly && b.ReadOnly);
    }

    [Fact]
    public void Open_AfterFirstUserCloses_Succeeds()
    {
        BlockImage.Open(_path, readOnly: false).Dispose();
        using var again = BlockImage.Open(_path, readOnly: false);
        Assert.Equal(4096, again.Length);
    }

    [Fact]
    public void Open_MissingFile_ThrowsNamingTheFile()
    {
        string missing = _path + ".missing";
        var e = Assert.Throws<IOException>(() => BlockImage.Open(missing, readOnly: false));
        Assert.Contains(missing, e.Message);
        Assert.Contains("does not exist", e.Message);
    }

    [Fact]
    public void Open_Directory_ThrowsClearError()
    {
        var e = Assert.Throws<IOException>(() => BlockImage.Open(Path.GetTempPath(), readOnly: true));
        Assert.Contains("directory", e.Message);
    }

    [Fact]
    public void WriteThenFlush_DataVisibleToAnotherReader()
    {
        using (var img = BlockImage.Open(_path, readOnly: false))
        {
            Assert.True(img.Write(512, [1, 2, 3]));
            Assert.True(img.Flush());
        }

        var bytes = File.ReadAllBytes(_path);
        Assert.Equal([1, 2, 3], bytes.AsSpan(512, 3).ToArray());
    }
}
