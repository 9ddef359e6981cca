using Ringvisor.Devices.Legacy;
using Ringvisor.Devices.Tests.Support;

namespace Ringvisor.Devices.Tests.Legacy;

public class Serial16550Tests
{
    private const ulong Data = 0, Ier = 1, Iir = 2, Fcr = 2, Lcr = 3, Mcr = 4, Lsr = 5, Msr = 6, Scr = 7;

    private readonly RecordingLine _irq = new();
    private readonly BufferOutput _out = new();
    private readonly Serial16550 _uart;

    public Serial16550Tests() => _uart = new Serial16550(_irq, _out);

    [Fact]
    public void Dlab_Set_DataAndIerAccessDivisorLatch()
    {
        _uart.Out8(Ier, 0x05);
        _uart.Out8(Lcr, 0x83);
        _uart.Out8(Data, 0x01);
        _uart.Out8(Ier, 0x02);

        Assert.Equal(0x01, _uart.In8(Data));
        Assert.Equal(0x02, _uart.In8(Ier));

        _uart.Out8(Lcr, 0x03);
        Assert.Equal(0x05, _uart.In8(Ier)); // IER untouched by the divisor writes
        Assert.Empty(_out.Bytes); // the DLL write did not transmit
    }

    [Fact]
    public void Ier_Write_ReadsBackLowNibbleOnly()
    {
        _uart.Out8(Ier, 0xFF);
        Assert.Equal(0x0F, _uart.In8(Ier));
    }

    [Fact]
    public void Thr_Write_SendsByteToOutput()
    {
        foreach (byte b in "hi\n"u8)
        {
            _uart.Out8(Data, b);
        }

        Assert.Equal("hi\n"u8.ToArray(), _out.Bytes);
    }

    [Fact]
    public void Lsr_Idle_ReportsTransmitterEmptyAndNoData()
    {
        Assert.Equal(0x60, _uart.In8(Lsr));
        _uart.EnqueueInput("x"u8);
        Assert.Equal(0x61, _uart.In8(Lsr));
        Assert.Equal((byte)'x', _uart.In8(Data));
        Assert.Equal(0x60, _uart.In8(Lsr));
    }

    [Fact]
    public void Iir_FifoEnabled_SetsTopBits()
    {
        Assert.Equal(0x01, _uart.In8(Iir));
        _uart.Out8(Fcr, 0x01);
        Assert.Equal(0xC1, _uart.In8(Iir));
    }

    [Fact]
    public void Iir_SeveralSources_ReportedInPriorityOrder()
    {
        // Loopback without FIFOs: the second byte overruns the one-byte receiver (line status), the first byte
        // waits in RBR (RX data), THR is empty (THRE), and the MCR change toggled looped-back modem lines.
        _uart.Out8(Ier, 0x0F);
        _uart.Out8(Mcr, 0x18); // LOOP | OUT2: CTS and DSR drop, a modem status change
        _uart.Out8(Data, 0x41);
        _uart.Out8(Data, 0x42);

        Assert.Equal(0x06, _uart.In8(Iir)); // line status first
        Assert.Equal(0x02, _uart.In8(Lsr) & 0x02); // OE, cleared by this read
        Assert.Equal(0x04, _uart.In8(Iir)); // then received data
        Assert.Equal(0x41, _uart.In8(Data));
        Assert.Equal(0x02, _uart.In8(Iir)); // then THRE; reading IIR clears it
        Assert.Equal(0x00, _uart.In8(Iir)); // then modem status
        Assert.NotEqual(0, _uart.In8(Msr) & 0x0F);
        Assert.Equal(0x01, _uart.In8(Iir));
    }

    [Fact]
    public void Fifo_BelowTriggerLevel_ReportsTimeoutThenDataAvailable()
    {
        _uart.Out8(Fcr, 0x81); // FIFO on, trigger level 8
        _uart.Out8(Ier, 0x01);

        _uart.EnqueueInput("abcd"u8);
        Assert.Equal(0xCC, _uart.In8(Iir));

        _uart.EnqueueInput("efgh"u8);
        Assert.Equal(0xC4, _uart.In8(Iir));
    }

    [Fact]
    public void Fifo_Clear_DropsReceivedBytes()
    {
        _uart.Out8(Fcr, 0x01);
        _uart.EnqueueInput("abc"u8);
        _uart.Out8(Fcr, 0x03);
        Assert.Equal(0, _uart.In8(Lsr) & 0x01);
    }

    [Fact]
    public void Thre_EnabledWithOut2_RaisesLineUntilIirRead()
    {
        _uart.Out8(Mcr, 0x08);
        _uart.Out8(Ier, 0x02);
        Assert.True(_irq.Level);

        Assert.Equal(0x02, _uart.In8(Iir));
        Assert.False(_irq.Level);
        Assert.Equal(0x01, _uart.In8(Iir));
    }

    [Fact]
    public void Thre_ThrWrite_ClearsAndReRaisesAsNewEdge()
    {
        _uart.Out8(Mcr, 0x08);
        _uart.Out8(Ier, 0x02);
        int edges = _irq.RisingEdges;

        _uart.Out8(Data, 0x55);

        Assert.Equal(edges + 1, _irq.RisingEdges);
        Assert.True(_irq.Level);
        Assert.Equal(0x02, _uart.In8(Iir));
    }

    [Fact]
    public void Irq_Out2Clear_LineStaysLowWhileInterruptPending()
    {
        _uart.Out8(Ier, 0x02);
        Assert.Equal(0x02, _uart.In8(Iir) & 0x0F);
        Assert.False(_irq.Level);
        Assert.Equal(0, _irq.RisingEdges);
    }

    [Fact]
    public void Loopback_Enabled_TransmitsIntoReceiverAndLoopsModemLines()
    {
        _uart.Out8(Mcr, 0x10 | 0x01 | 0x02 | 0x04 | 0x08);
        _uart.Out8(Data, 0x99);

        Assert.Empty(_out.Bytes);
        Assert.Equal(0x99, _uart.In8(Data));
        Assert.Equal(0xF0, _uart.In8(Msr) & 0xF0); // CTS, DSR, RI, DCD from RTS, DTR, OUT1, OUT2

        _uart.Out8(Mcr, 0x10);
        Assert.Equal(0x00, _uart.In8(Msr) & 0xF0);
    }

    [Fact]
    public void Input_MoreThanFifo_HeldBackAndDeliveredInOrder()
    {
        _uart.Out8(Fcr, 0x01);
        byte[] script = [.. Enumerable.Range(0, 1000).Select(i => (byte)(i * 7))];
        _uart.EnqueueInput(script);

        Assert.Equal(1000 - 16, _uart.HeldInputCount);

        var received = new List<byte>();
        while ((_uart.In8(Lsr) & 0x01) != 0)
        {
            received.Add(_uart.In8(Data));
        }

        Assert.Equal(script, received);
        Assert.Equal(0, _uart.HeldInputCount);
        Assert.Equal(0, _uart.In8(Lsr) & 0x02); // no overrun: nothing was dropped
    }

    [Fact]
    public void Scr_Write_ReadsBack()
    {
        _uart.Out8(Scr, 0x5A);
        Assert.Equal(0x5A, _uart.In8(Scr));
    }

    [Fact]
    public void SaveRestore_RoundTrip_KeepsRegistersAndPendingInput()
    {
        _uart.Out8(Lcr, 0x80);
        _uart.Out8(Data, 0x0C);
        _uart.Out8(Lcr, 0x1B);
        _uart.Out8(Fcr, 0x01);
        _uart.Out8(Ier, 0x01);
        _uart.EnqueueInput(new byte[40]);
        var saved = _uart.Save();

        var copy = new Serial16550(new RecordingLine(), new BufferOutput());
        copy.Restore(saved);

        Assert.Equal(saved, copy.Save() with { RxFifo = saved.RxFifo, HeldInput = saved.HeldInput });
        Assert.Equal(saved.RxFifo, copy.Save().RxFifo);
        Assert.Equal(24, copy.HeldInputCount);
        Assert.Equal(0x1B, copy.In8(Lcr));
    }

    [Fact]
    public void LinuxAutoconfig_Probe_Detects16550A()
    {
        // The checks Linux's 8250 autoconfig makes, in order: IER read-back, loopback modem lines, FIFO type.
        _uart.Out8(Ier, 0x00);
        Assert.Equal(0x00, _uart.In8(Ier) & 0x0F);
        _uart.Out8(Ier, 0x0F);
        Assert.Equal(0x0F, _uart.In8(Ier) & 0x0F);
        _uart.Out8(Ier, 0x00);

        _uart.Out8(Mcr, 0x10 | 0x0A); // LOOP | OUT2 | RTS
        Assert.Equal(0x90, _uart.In8(Msr) & 0xF0); // DCD | CTS
        _uart.Out8(Mcr, 0x00);

        _uart.Out8(Lcr, 0xBF);
        _uart.Out8(2, 0x00); // EFR on a 16650; FCR here
        _uart.Out8(Lcr, 0x00);
        _uart.Out8(Fcr, 0x01);
        Assert.Equal(3, _uart.In8(Iir) >> 6); // FIFOs present and working: a 16550A

        // Not a 16750: the 64-byte FIFO bit does not stick.
        _uart.Out8(Lcr, 0x80);
        _uart.Out8(Fcr, 0x21);
        Assert.NotEqual(0xE0, _uart.In8(Iir) & 0xE0);
    }

    [Fact]
    public async Task Input_TerminalThreadWhileGuestReads_EveryByteArrivesInOrder()
    {
        const int Total = 50_000;
        _uart.Out8(Fcr, 0x01);
        var terminal = Task.Run(() =>
        {
            var chunk = new byte[97];
            for (int sent = 0; sent < Total; sent += chunk.Length)
            {
                int n = Math.Min(chunk.Length, Total - sent);
                for (int i = 0; i < n; i++)
                {
                    chunk[i] = (byte)(sent + i);
                }

                _uart.EnqueueInput(chunk.AsSpan(0, n));
            }
        });

        var guest = Task.Run(() =>
        {
            int received = 0;
            while (received < Total)
            {
                if ((_uart.In8(Lsr) & 0x01) == 0)
                {
                    Thread.Yield();
                    continue;
                }

                Assert.Equal((byte)received, _uart.In8(Data));
                received++;
            }
        });

        await Task.WhenAll(terminal, guest);
        Assert.Equal(0, _uart.In8(Lsr) & 0x03);
    }
}
