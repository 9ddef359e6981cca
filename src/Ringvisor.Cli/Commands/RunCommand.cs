// `ringvisor run`: build a VM from the options, connect the serial console to this terminal, run to the end.
using System.CommandLine;
using System.Runtime.InteropServices;
using Ringvisor.Cli.Terminal;
using Ringvisor.Machine;

namespace Ringvisor.Cli.Commands;

internal static class RunCommand
{
    /// <summary>Without --append a Linux kernel would print nothing on COM1 (QEMU users meet the same surprise).</summary>
    public const string DefaultKernelCommandLine = "console=ttyS0";

    public static Command Create()
    {
        var kernel = new Option<string?>("--kernel") { Description = "Kernel: bzImage, ELF vmlinux (PVH or 64-bit) or multiboot image. Default: the default guest." };
        var initrd = new Option<string[]>("--initrd") { Description = "Initial ramdisk (Linux) or module (multiboot); repeat for more modules.", AllowMultipleArgumentsPerToken = false };
        var append = new Option<string?>("--append") { Description = "Kernel command line (default with --kernel: \"console=ttyS0\", so a Linux guest talks on the serial console)." };
        var memory = new Option<string>("--memory", "-m") { Description = "Guest RAM, e.g. 256M, 2G.", DefaultValueFactory = _ => "256M" };
        var cpus = new Option<int>("--cpus") { Description = "Number of vCPUs.", DefaultValueFactory = _ => 1 };
        var engine = new Option<string>("--engine") { Description = "kvm (hardware-assisted), bt (software), or auto.", DefaultValueFactory = _ => "auto" };
        engine.AcceptOnlyFromAmong("kvm", "bt", "auto");
        var debugExit = new Option<bool>("--debug-exit") { Description = "Attach isa-debug-exit at port 0xf4: writing v exits with status (v << 1) | 1." };
        var trace = new Option<string?>("--trace") { Description = "bt engine: write an instruction and exception trace of vCPU 0 to FILE." };
        var stats = new Option<bool>("--stats") { Description = "Print engine statistics at exit." };
        var translate = new Option<string>("--bt-translate") { Description = "bt engine: on (translate hot code to IL) or off (interpret only).", DefaultValueFactory = _ => "on" };
        translate.AcceptOnlyFromAmong("on", "off");
        var disk = new Option<string[]>("--disk") { Description = "virtio-blk disk from a raw image: PATH[,readonly]; repeat for more (vda, vdb, ...)." };
        var net = new Option<string[]>("--net") { Description = "virtio-net NIC: switch=NAME[,mac=..] (a `ringvisor switch NAME`) or tap=IFNAME[,mac=..]; repeat for more." };
        var virtioConsole = new Option<string[]>("--virtio-console") { Description = "Extra console port (virtio-console, /dev/hvc0, hvc1, ...): unix=PATH (listen on a UNIX socket; one client at a time) or file=PATH (append guest output); repeat for more." };
        var name = new Option<string>("--name") { Description = "VM name (stable default MAC addresses derive from it).", DefaultValueFactory = _ => "vm" };

        var cmd = new Command("run", "Boot a guest with its serial console on this terminal (Ctrl-A X quits).")
        {
            kernel, initrd, append, memory, cpus, engine, debugExit, trace, stats, translate, disk, net, virtioConsole, name,
        };
        cmd.SetAction(pr =>
        {
            if (!MemorySize.TryParse(pr.GetValue(memory)!, out ulong memBytes, out string? memErr))
            {
                return CliApp.Fail($"--memory {memErr}");
            }

            string? kernelPath = pr.GetValue(kernel);
            string? cmdline = pr.GetValue(append);
            var initrds = pr.GetValue(initrd) ?? [];
            if (kernelPath is null)
            {
                if (initrds.Length > 0)
                {
                    return CliApp.Fail("--initrd needs --kernel (the default guest brings its own initramfs)");
                }

                try
                {
                    var image = Ringvisor.Machine.Images.DefaultGuestImage.EnsureBuilt(StderrProgress.Instance);
                    kernelPath = image.Kernel;
                    initrds = [image.Initrd];
                    cmdline ??= image.DefaultCommandLine;
                }
                catch (Exception e) when (e is not OutOfMemoryException)
                {
                    return CliApp.Fail($"cannot build the default guest image: {e.Message}");
                }
            }

            var disks = new List<DiskConfig>();
            foreach (var d in pr.GetValue(disk) ?? [])
            {
                if (DiskConfig.Parse(d, out string? err) is not { } dc)
                {
                    return CliApp.Fail(err!);
                }

                disks.Add(dc);
            }

            var nets = new List<NetConfig>();
            foreach (var n in pr.GetValue(net) ?? [])
            {
                if (NetConfig.Parse(n, out string? err) is not { } nc)
                {
                    return CliApp.Fail(err!);
                }

                nets.Add(nc);
            }

            var consoles = new List<ConsoleConfig>();
            foreach (var c in pr.GetValue(virtioConsole) ?? [])
            {
                if (ConsoleConfig.Parse(c, out string? err) is not { } cc)
                {
                    return CliApp.Fail(err!);
                }

                consoles.Add(cc);
            }

            var config = new MachineConfig
            {
                Disks = disks,
                Nets = nets,
                Consoles = consoles,
                Name = pr.GetValue(name)!,
                KernelPath = kernelPath,
                InitrdPaths = initrds,
                CommandLine = cmdline ?? DefaultKernelCommandLine,
                MemoryBytes = memBytes,
                VcpuCount = pr.GetValue(cpus),
                Engine = pr.GetValue(engine) switch { "kvm" => EngineKind.Kvm, "bt" => EngineKind.Bt, _ => EngineKind.Auto },
                DebugExit = pr.GetValue(debugExit),
                TracePath = pr.GetValue(trace),
                CollectStats = pr.GetValue(stats),
                BtTranslation = pr.GetValue(translate) != "off",
            };
            return Execute(config);
        });
        return cmd;
    }

    private static int Execute(MachineConfig config)
    {
        if (config.Validate() is { } invalid)
        {
            return CliApp.Fail(invalid);
        }

        var stdout = Console.OpenStandardOutput();
        BuiltMachine machine;
        try
        {
            machine = MachineBuilder.Build(config, bytes =>
            {
                stdout.Write(bytes);
                stdout.Flush();
            });
        }
        catch (Exception e) when (e is not OutOfMemoryException)
        {
            return CliApp.Fail(e.Message);
        }

        using (machine)
        using (RawTerminal.Enter())
        {
            var vm = machine.Vm;
            var mux = new ConsoleMux(machine.SendConsoleInput, vm.Quit, m =>
            {
                var b = System.Text.Encoding.ASCII.GetBytes(m);
                stdout.Write(b);
                stdout.Flush();
            });
            using var sigint = PosixSignalRegistration.Create(PosixSignal.SIGINT, ctx => { ctx.Cancel = true; vm.Quit(); });
            using var sigterm = PosixSignalRegistration.Create(PosixSignal.SIGTERM, ctx => { ctx.Cancel = true; vm.Quit(); });
            using var sighup = PosixSignalRegistration.Create(PosixSignal.SIGHUP, ctx => { ctx.Cancel = true; vm.Quit(); });
            vm.Start();
            mux.StartStdinPump();
            var result = vm.WaitForStop();
            RawTerminal.Restore();
            stdout.Flush();
            if (config.CollectStats && machine.FormatStats() is { } statsText)
            {
                Console.Error.WriteLine(statsText);
            }

            if (result.Reason is Ringvisor.Core.Vm.VmStopReason.EngineError or Ringvisor.Core.Vm.VmStopReason.TripleFault)
            {
                Console.Error.WriteLine($"ringvisor: guest stopped: {result.Detail ?? result.Reason.ToString()}");
            }

            return result.ExitStatus;
        }
    }
}
