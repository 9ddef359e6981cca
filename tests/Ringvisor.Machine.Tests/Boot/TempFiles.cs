// A per-test temporary directory for the synthetic kernel, initrd and module files the loader tests write.
namespace Ringvisor.Machine.Tests.Boot;

internal sealed class TempFiles : IDisposable
{
    public TempFiles()
    {
        Directory = Path.Combine(Path.GetTempPath(), "ringvisor-boot-" + Guid.NewGuid().ToString("N"));
        System.IO.Directory.CreateDirectory(Directory);
    }

    public string Directory { get; }

    public string Write(string name, byte[] contents)
    {
        string path = Path.Combine(Directory, name);
        File.WriteAllBytes(path, contents);
        return path;
    }

    /// <summary>A file of <paramref name="length"/> bytes whose byte i is (i * 7 + seed) mod 251, to check copies.</summary>
    public string WritePattern(string name, int length, int seed)
    {
        var data = new byte[length];
        for (int i = 0; i < length; i++)
        {
            data[i] = Pattern(i, seed);
        }

        return Write(name, data);
    }

    public static byte Pattern(long i, int seed) => (byte)(((i * 7) + seed) % 251);

    public void Dispose()
    {
        try
        {
            System.IO.Directory.Delete(Directory, recursive: true);
        }
        catch (IOException)
        {
        }
    }
}
