// The loaders' boot states, run for real: each synthetic image's entry stub reports what it sees through a port and
// then faults (an empty IDT makes that a triple fault, which ends KVM_RUN). This checks that KVM accepts the
// segment, control-register and page-table setup and that the registers point at the right structures.
using System.Buffers.Binary;
using Iced.Intel;
using Ringvisor.Core.Bus;
using Ringvisor.Core.Cpu;
using Ringvisor.Core.Memory;
using Ringvisor.Core.Vm;
using Ringvisor.Kvm;
using Ringvisor.Machine.Boot;
using Ringvisor.TestSupport;
using static Iced.Intel.AssemblerRegisters;

namespace Ringvisor.Machine.Tests.Boot;

public sealed class BootUnderKvmTests : IDisposable
{
    private const ushort ReportPort = 0x510;
    private const ulong Ram = 64UL << 20;

    private readonly TempFiles _files = new();
    private readonly GuestMemory _memory = GuestMemory.Create(Ram);

    public void Dispose()
    {
        _memory.Dispose();
        _files.Dispose();
    }

    /// <summary>Loads the image, runs vCPU 0 until it stops, and returns the dwords the guest wrote to the report port.</summary>
    private List<uint> BootAndCollect(byte[] image, string cmdline = "") => BootAndCollect(image, cmdline, out _);

    private List<uint> BootAndCollect(byte[] image, string cmdline, out CpuState final)
    {
        string path = _files.Write("kernel", image);
        var boot = KernelLoader.Load(_memory, new KernelLoadOptions(path, [], cmdline, 1));

        var pio = new IoBus("pio", 0x1_0000);
        var mmio = new IoBus("mmio", ulong.MaxValue);
        var report = new Recorder();
        pio.Register(ReportPort, 4, report, "report");
        var context = new EngineContext { Memory = _memory, Pio = pio, Mmio = mmio, Control = new NoControl(), VcpuCount = 1 };
        using var engine = new KvmEngine(context);
        using var vcpu = engine.CreateVcpu(0);
        vcpu.SetState(boot.BootCpu);
        // A stub that never reaches its fault would hang the test: kick it after a generous delay.
        using var watchdog = new Timer(_ => vcpu.Kick(), null, TimeSpan.FromSeconds(30), Timeout.InfiniteTimeSpan);
        var exit = vcpu.Run();

        Assert.Equal(VcpuExitReason.Shutdown, exit.Reason);
        final = vcpu.GetState();
        return report.Values;
    }

    private static byte[] Assemble(int bitness, ulong rip, Action<Assembler> body)
    {
        var a = new Assembler(bitness);
        body(a);
        a.mov(dx, ReportPort);
        a.ud2();
        var writer = new Writer();
        a.Assemble(writer, rip);
        return [.. writer.Bytes];
    }

    [KvmFact]
    public void BzImage_UnderKvm_RunsInLongModeWithZeroPageInRsi()
    {
        const ulong Load = 0x100_0000;
        byte[] payload = FakeBzImage.DefaultPayload(Load);
        Assemble(64, Load + 0x200, a =>
        {
            a.mov(dx, ReportPort);
            a.mov(eax, __dword_ptr[rsi + 0x228]); // boot_params.hdr.cmd_line_ptr
            a.@out(dx, eax);
            a.mov(eax, __dword_ptr[rax]); // first 4 bytes of the command line, through the identity map
            a.@out(dx, eax);
            a.mov(rcx, cr0);
            a.shr(rcx, 31); // CR0.PG
            a.mov(eax, ecx);
            a.@out(dx, eax);
            a.mov(rax, 0x5_0000_0000); // only a 64-bit register holds this (REX.W decodes differently outside long mode)
            a.shr(rax, 32);
            a.@out(dx, eax);
            a.mov(eax, cs);
            a.@out(dx, eax);
        }).CopyTo(payload, 0x200);

        var values = BootAndCollect(new FakeBzImage { Payload = payload }.Build(), "ring", out var final);

        Assert.Equal(BootLayout.CommandLineAddress, values[0]);
        Assert.Equal(BinaryPrimitives.ReadUInt32LittleEndian("ring"u8), values[1]);
        Assert.Equal(1U, values[2]);
        Assert.Equal(5U, values[3]);
        Assert.Equal(SystemRegisters.EferLme | SystemRegisters.EferLma, final.System.Efer & (SystemRegisters.EferLme | SystemRegisters.EferLma));
        Assert.Equal(0x10U, values[4]);
    }

    [KvmFact]
    public void Multiboot_UnderKvm_RunsIn32BitProtectedModeWithMagicAndInfo()
    {
        byte[] image = MultibootImages.Aout();
        Assemble(32, MultibootImages.AoutEntry, a =>
        {
            a.mov(dx, ReportPort);
            a.@out(dx, eax); // magic
            a.mov(eax, __dword_ptr[ebx + 4]); // mem_lower
            a.@out(dx, eax);
            a.mov(eax, cr0);
            a.@out(dx, eax);
            a.mov(eax, ds);
            a.@out(dx, eax);
        }).CopyTo(image, 0x80);

        var values = BootAndCollect(image);

        Assert.Equal(0x2BADB002U, values[0]);
        Assert.Equal(639U, values[1]);
        Assert.Equal(1U, values[2] & 1); // PE
        Assert.Equal(0U, values[2] >> 31); // paging off
        Assert.Equal(0x18U, values[3]);
    }

    [KvmFact]
    public void Pvh_UnderKvm_RunsWithStartInfoInEbx()
    {
        const uint Load = 0x20_0000;
        byte[] text = Assemble(32, Load, a =>
        {
            a.mov(dx, ReportPort);
            a.mov(eax, __dword_ptr[ebx]); // hvm_start_info.magic
            a.@out(dx, eax);
            a.mov(eax, __dword_ptr[ebx + 0x18]); // cmdline_paddr (low half)
            a.mov(eax, __dword_ptr[eax]);
            a.@out(dx, eax);
        });
        var image = new ElfBuilder(is64: true) { Entry = Load }.Load(Load, text).PvhNote(Load).Build();

        var values = BootAndCollect(image, "pvh!");

        Assert.Equal(0x336EC578U, values[0]);
        Assert.Equal(BinaryPrimitives.ReadUInt32LittleEndian("pvh!"u8), values[1]);
    }

    private sealed class Recorder : IBusDevice
    {
        public List<uint> Values { get; } = [];

        public void Read(ulong offset, Span<byte> data) => data.Clear();

        public void Write(ulong offset, ReadOnlySpan<byte> data)
        {
            Span<byte> value = stackalloc byte[4];
            value.Clear();
            data[..Math.Min(4, data.Length)].CopyTo(value);
            Values.Add(BinaryPrimitives.ReadUInt32LittleEndian(value));
        }
    }

    private sealed class NoControl : IVmControl
    {
        public void RequestStop(VmStopReason reason, int exitStatus, string? detail = null)
        {
        }
    }

    private sealed class Writer : CodeWriter
    {
        public List<byte> Bytes { get; } = [];

        public override void WriteByte(byte value) => Bytes.Add(value);
    }
}
