namespace Ringvisor.Machine.Images;

/// <summary>One loadable kernel module: its normalised name, its path relative to /lib/modules/&lt;version&gt;, and the modules it needs first.</summary>
public sealed record KernelModule(string Name, string RelativePath, IReadOnlyList<string> Depends);
