// A machine built around a test kernel image written to a temporary file; disposing it disposes the VM and deletes
// the file.
namespace Ringvisor.Machine.Tests.Integration;

internal sealed class TestMachine : IDisposable
{
    private readonly string _kernel;

    private TestMachine(string kernel, BuiltMachine machine)
    {
        _kernel = kernel;
        Machine = machine;
    }

    public BuiltMachine Machine { get; }

    public VirtualMachine Vm => Machine.Vm;

    public static TestMachine Build(EngineKind engine, byte[] image, Action<ReadOnlySpan<byte>>? console = null,
        string commandLine = "", ulong memory = 32UL << 20, bool debugExit = false)
    {
        string kernel = Path.Combine(Path.GetTempPath(), $"rv-mbtest-{Guid.NewGuid():N}.bin");
        File.WriteAllBytes(kernel, image);
        try
        {
            var cfg = new MachineConfig
            {
                KernelPath = kernel,
                CommandLine = commandLine,
                MemoryBytes = memory,
                Engine = engine,
                DebugExit = debugExit,
            };
            return new TestMachine(kernel, MachineBuilder.Build(cfg, console ?? (_ => { })));
        }
        catch
        {
            File.Delete(kernel);
            throw;
        }
    }

    public void Dispose()
    {
        Machine.Dispose();
        File.Delete(_kernel);
    }
}
