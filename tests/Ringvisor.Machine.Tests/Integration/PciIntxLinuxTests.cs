// The default guest with MSI off (pci=nomsi) must get its virtio interrupts over PCI INTx: with one vCPU the machine
// has no ACPI and Linux runs on the 8259s (XT-PIC, the IRQ from the interrupt line register, level-triggered per the
// ELCR); with two vCPUs Linux uses the IOAPIC and finds the routing in the DSDT's _PRT (and powers off through \_S5).
using System.Globalization;
using Ringvisor.Core.Vm;
using Ringvisor.Machine.Images;

namespace Ringvisor.Machine.Tests.Integration;

public sealed class PciIntxLinuxTests
{
    [Theory]
    [InlineData(1, "XT-PIC")]
    [InlineData(2, "IO-APIC")]
    public void DiskWithoutMsi_Bt_ReadsFileOverIntx(int cpus, string controller)
    {
        string img = Path.Combine(Path.GetTempPath(), $"rv-intx-{Guid.NewGuid():N}.img");
        try
        {
            DiskImage.CreateExt4(img, 16, new Dictionary<string, byte[]> { ["known.txt"] = DiskImage.TextFile("intx-known-content\n") });
            using var s = LinuxSession.Boot(EngineKind.Bt, cpus, "pci=nomsi", disks: [new DiskConfig(img, ReadOnly: false)]);

            Assert.Contains("intx-known-content", s.Run("cat /mnt/vda/known.txt"));

            // virtio0 is the disk (first PCI function after the host bridge).
            string interrupts = s.Run("cat /proc/interrupts");
            string? line = interrupts.Split('\n').FirstOrDefault(l => l.TrimEnd('\r').EndsWith("virtio0", StringComparison.Ordinal));
            Assert.True(line is not null, $"no virtio0 line in /proc/interrupts:\n{interrupts}");
            Assert.Contains(controller, line);
            Assert.DoesNotContain("MSI", line);
            Assert.True(InterruptCount(line) > 0, $"virtio0 took no interrupts: {line}");

            s.Send("poweroff -f");
            var result = s.Machine.Vm.WaitForStop(LinuxSession.CommandLimit);
            var expected = cpus > 1 ? VmStopReason.PowerOff : VmStopReason.HaltedForever; // ACPI S5 only with the ACPI tables
            Assert.True(result.Reason == expected, $"{result.Reason}: {result.Detail}");
            Assert.Equal(0, result.ExitStatus);
        }
        finally
        {
            File.Delete(img);
        }
    }

    /// <summary>Sums the per-CPU counts: the numbers after "IRQ:" up to the controller name.</summary>
    private static long InterruptCount(string line)
    {
        long sum = 0;
        foreach (string token in line[(line.IndexOf(':', StringComparison.Ordinal) + 1)..].Split(' ', StringSplitOptions.RemoveEmptyEntries))
        {
            if (!long.TryParse(token, NumberStyles.None, CultureInfo.InvariantCulture, out long n))
            {
                break;
            }

            sum += n;
        }

        return sum;
    }
}
