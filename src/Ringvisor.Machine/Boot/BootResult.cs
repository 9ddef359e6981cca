using Ringvisor.Core.Cpu;

namespace Ringvisor.Machine.Boot;

/// <summary>What a loader did: the boot vCPU's state and where everything went in guest RAM.</summary>
/// <param name="BootCpu">The state to give vCPU 0 (application processors start in wait-for-SIPI as usual).</param>
/// <param name="Format">One of the <see cref="BootFormat"/> constants.</param>
/// <param name="EntryPoint">Guest-physical address where the vCPU starts (RIP).</param>
/// <param name="KernelStart">Lowest guest-physical address the kernel image occupies.</param>
/// <param name="KernelEnd">One past the highest address the kernel image occupies (including bss / init_size).</param>
/// <param name="MemoryMap">The memory map handed to the guest (e820 / multiboot mmap / PVH memmap).</param>
/// <param name="InitrdAddress">Linux/PVH: where the (concatenated) initrd starts, or 0 without one.</param>
/// <param name="InitrdSize">Linux/PVH: its size in bytes, or 0.</param>
/// <param name="Modules">Where each initrd file (Linux, PVH) or module (multiboot) was placed.</param>
/// <param name="BootInfoAddress">The zero page (Linux), hvm_start_info (PVH) or multiboot information structure.</param>
/// <param name="CommandLineAddress">Where the NUL-terminated command line was written.</param>
/// <param name="MpTableAddress">The MP floating pointer structure.</param>
public sealed record BootResult(
    CpuState BootCpu,
    string Format,
    ulong EntryPoint,
    ulong KernelStart,
    ulong KernelEnd,
    IReadOnlyList<E820Entry> MemoryMap,
    ulong InitrdAddress,
    ulong InitrdSize,
    IReadOnlyList<BootModule> Modules,
    ulong BootInfoAddress,
    ulong CommandLineAddress,
    ulong MpTableAddress)
{
    /// <summary>The ACPI RSDP when <see cref="KernelLoadOptions.Acpi"/> was set, else 0.</summary>
    public ulong AcpiRsdpAddress { get; init; }
}
