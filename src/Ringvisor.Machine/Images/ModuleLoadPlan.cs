namespace Ringvisor.Machine.Images;

/// <summary>
/// The result of resolving wanted modules against a kernel: what to insmod, dependencies first; which wanted names
/// are compiled into the kernel (nothing to load); and which names the kernel has neither as a module nor built in.
/// </summary>
public sealed record ModuleLoadPlan(IReadOnlyList<KernelModule> LoadOrder, IReadOnlyList<string> BuiltIn, IReadOnlyList<string> Missing);
