namespace Ringvisor.Cli.Commands;

/// <summary>Prints progress lines to stderr synchronously (Progress&lt;T&gt; would post them out of order on the thread pool).</summary>
internal sealed class StderrProgress : IProgress<string>
{
    public static readonly StderrProgress Instance = new();

    public void Report(string value) => Console.Error.WriteLine($"ringvisor: {value}");
}
