// A per-device thread that processes queue notifications, so a vCPU's MMIO write (or an eventfd read) returns at
// once and slow backends (disk I/O) never run on a vCPU thread.
namespace Ringvisor.Devices.Virtio;

internal sealed class VirtioWorker : IDisposable
{
    private readonly Action<int> _process;
    private readonly Thread _thread;
    private readonly AutoResetEvent _wake = new(false);
    private long _pending;
    private volatile bool _stopping;

    public VirtioWorker(string name, Action<int> process)
    {
        _process = process;
        _thread = new Thread(Run) { IsBackground = true, Name = $"virtio {name}" };
        _thread.Start();
    }

    public void Post(int queue)
    {
        Interlocked.Or(ref _pending, 1L << queue);
        _wake.Set();
    }

    public void Dispose()
    {
        _stopping = true;
        _wake.Set();
        if (Thread.CurrentThread != _thread)
        {
            _thread.Join();
        }

        _wake.Dispose();
    }

    private void Run()
    {
        while (!_stopping)
        {
            _wake.WaitOne();
            long bits = Interlocked.Exchange(ref _pending, 0);
            while (bits != 0 && !_stopping)
            {
                int q = System.Numerics.BitOperations.TrailingZeroCount(bits);
                bits &= bits - 1;
                _process(q);
            }
        }
    }
}
