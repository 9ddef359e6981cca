// A validated descriptor chain (VIRTIO 1.2 §2.7.5): the device-readable buffers followed by the device-writable
// ones, flattened out of direct and indirect descriptors. Offsets below are into the concatenation of one side.
using Ringvisor.Core.Memory;

namespace Ringvisor.Devices.Virtio;

public sealed class DescriptorChain
{
    private readonly List<ChainSegment> _readable = [];
    private readonly List<ChainSegment> _writable = [];

    /// <summary>The head descriptor index, returned to the driver in the used ring.</summary>
    public ushort Head { get; internal set; }

    public IReadOnlyList<ChainSegment> Readable => _readable;

    public IReadOnlyList<ChainSegment> Writable => _writable;

    public ulong ReadableLength { get; private set; }

    public ulong WritableLength { get; private set; }

    /// <summary>Copies <paramref name="destination"/>.Length bytes from readable offset <paramref name="offset"/>; false if the chain is shorter.</summary>
    public bool TryRead(GuestMemory memory, ulong offset, Span<byte> destination)
    {
        if (offset > ReadableLength || (ulong)destination.Length > ReadableLength - offset)
        {
            return false;
        }

        foreach (var s in _readable)
        {
            if (destination.IsEmpty)
            {
                break;
            }

            if (offset >= s.Length)
            {
                offset -= s.Length;
                continue;
            }

            int n = (int)Math.Min((ulong)destination.Length, s.Length - offset);
            if (memory.Read(s.Address + offset, destination[..n]) != MemoryAccessResult.Ok)
            {
                return false;
            }

            destination = destination[n..];
            offset = 0;
        }

        return destination.IsEmpty;
    }

    /// <summary>Copies <paramref name="source"/> to writable offset <paramref name="offset"/>; false if the chain is shorter.</summary>
    public bool TryWrite(GuestMemory memory, ulong offset, ReadOnlySpan<byte> source)
    {
        if (offset > WritableLength || (ulong)source.Length > WritableLength - offset)
        {
            return false;
        }

        foreach (var s in _writable)
        {
            if (source.IsEmpty)
            {
                break;
            }

            if (offset >= s.Length)
            {
                offset -= s.Length;
                continue;
            }

            int n = (int)Math.Min((ulong)source.Length, s.Length - offset);
            if (memory.Write(s.Address + offset, source[..n]) != MemoryAccessResult.Ok)
            {
                return false;
            }

            source = source[n..];
            offset = 0;
        }

        return source.IsEmpty;
    }

    /// <summary>
    /// Visits the readable (or writable) bytes in [offset, offset+length) as guest-memory spans, for zero-copy I/O.
    /// Returns false if the chain is shorter or a span cannot be had.
    /// </summary>
    public bool ForEachSpan(GuestMemory memory, bool writable, ulong offset, ulong length, SpanVisitor visitor)
    {
        ulong total = writable ? WritableLength : ReadableLength;
        if (offset > total || length > total - offset)
        {
            return false;
        }

        ulong position = 0;
        foreach (var s in writable ? _writable : _readable)
        {
            if (length == 0)
            {
                break;
            }

            if (offset >= s.Length)
            {
                offset -= s.Length;
                continue;
            }

            int n = (int)Math.Min(length, s.Length - offset);
            bool ok = writable
                ? memory.TryGetWritableSpan(s.Address + offset, n, out var span)
                : memory.TryGetSpan(s.Address + offset, n, out span);
            if (!ok || !visitor(span, position))
            {
                return false;
            }

            position += (ulong)n;
            length -= (ulong)n;
            offset = 0;
        }

        return length == 0;
    }

    internal void Clear()
    {
        _readable.Clear();
        _writable.Clear();
        ReadableLength = 0;
        WritableLength = 0;
    }

    internal void Add(ChainSegment segment, bool writable)
    {
        if (writable)
        {
            _writable.Add(segment);
            WritableLength += segment.Length;
        }
        else
        {
            _readable.Add(segment);
            ReadableLength += segment.Length;
        }
    }
}
