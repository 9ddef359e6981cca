using Ringvisor.Devices.Platform;
using Ringvisor.Devices.Tests.Support;

namespace Ringvisor.Devices.Tests.Platform;

/// <summary>vCPU threads, a device thread and the PIC hammer the interrupt platform at once; nothing may deadlock or be lost.</summary>
public class ApicConcurrencyTests
{
    [Fact]
    public async Task IpisEoisAndLevelPins_FromManyThreads_AllDeliveredWithoutDeadlock()
    {
        const int Cpus = 4;
        const int Rounds = 300;
        var rig = new ApicTestRig(Cpus);
        rig.EnableAll();
        rig.WriteRedirection(10, (1UL << 15) | 0x60); // level, to CPU 0: exercises the EOI broadcast path
        rig.Pic.MasterPorts.Out8(0, 0x11);
        rig.Pic.MasterPorts.Out8(1, 0x20);
        rig.Pic.MasterPorts.Out8(1, 0x04);
        rig.Pic.MasterPorts.Out8(1, 0x01);
        var received = new int[Cpus];
        using var stop = new CancellationTokenSource();

        var vcpus = Enumerable.Range(0, Cpus).Select(i => Task.Run(() =>
        {
            var me = rig.Lapics[i];
            int target = (i + 1) % Cpus;
            int sent = 0;

            // A fixed IPI whose vector is still pending in the target's IRR merges with it, as on hardware, so
            // each IPI is sent only after the target has taken the previous one.
            while ((sent < Rounds || Volatile.Read(ref received[i]) < Rounds) && !stop.IsCancellationRequested)
            {
                if (sent < Rounds && Volatile.Read(ref received[target]) == sent)
                {
                    me.Write32(ApicTestRig.IcrHigh, (uint)target << 24);
                    me.Write32(ApicTestRig.IcrLow, 0x50); // fixed vector 0x50 to the next CPU
                    sent++;
                }

                Drain(me, i, received);
                Thread.Yield(); // 2 host cores: let the other "vCPUs" run
            }
        })).ToArray();

        var device = Task.Run(() =>
        {
            for (int r = 0; r < Rounds; r++)
            {
                rig.Routing.SetGsi(10, true);
                rig.Routing.SetGsi(3, true);
                rig.Routing.SetGsi(10, false);
                rig.Routing.SetGsi(3, false);
            }
        });

        var all = Task.WhenAll([.. vcpus, device]);
        bool finished = await Task.WhenAny(all, Task.Delay(TimeSpan.FromSeconds(60))) == all;
        stop.Cancel();
        Assert.True(finished, "the interrupt platform deadlocked or lost IPIs");
        Assert.All(received, n => Assert.Equal(Rounds, n));
    }

    private static void Drain(LocalApic me, int index, int[] received)
    {
        while (me.HasInterrupt)
        {
            int v = me.AcknowledgeInterrupt();
            if (v < 0)
            {
                break;
            }

            if (v == 0x50)
            {
                Interlocked.Increment(ref received[index]);
            }

            me.Write32(ApicTestRig.Eoi, 0);
        }
    }
}
