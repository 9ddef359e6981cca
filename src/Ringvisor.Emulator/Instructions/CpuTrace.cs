// --trace: an instruction and exception log of one vCPU (RIP, bytes, Intel-syntax disassembly).
using System.Text;
using Iced.Intel;
using Ringvisor.Emulator.Exceptions;

namespace Ringvisor.Emulator.Instructions;

public sealed partial class Cpu
{
    private TextWriter? _trace;
    private Formatter? _formatter;
    private readonly StringBuilder _traceLine = new();
    private readonly StringOutput _formatterOutput = new();

    /// <summary>Starts writing the trace to <paramref name="writer"/> (null stops it).</summary>
    internal void SetTrace(TextWriter? writer)
    {
        _trace = writer;
        _formatter ??= new IntelFormatter();
    }

    private void TraceInstruction(in Instruction ins)
    {
        _traceLine.Clear();
        _traceLine.Append(Seg[SegCs].Selector.ToString("x4")).Append(':').Append(Rip.ToString("x16")).Append("  ");
        Span<byte> bytes = stackalloc byte[16];
        int n = Math.Min(ins.Length, 15);
        // The bytes were just fetched, so this cannot fault; if it somehow does, the trace just omits them (the MMU
        // records nothing guest-visible).
        if (_mmu.TryFetch(Linear(SegCs, Rip), bytes[..n]))
        {
            for (int i = 0; i < n; i++)
            {
                _traceLine.Append(bytes[i].ToString("x2"));
            }
        }

        _traceLine.Append(' ', Math.Max(1, 32 - 2 * n));
        _formatter!.Format(ins, _formatterOutput);
        _traceLine.Append(_formatterOutput.ToStringAndReset());
        _trace!.WriteLine(_traceLine.ToString());
    }

    private void TraceException(int vector, bool hasError, uint error, ExceptionSource source)
    {
        if (_trace is null)
        {
            return;
        }

        _trace.WriteLine($"  ** {source} vector {vector}{(hasError ? $" error {error:x}" : string.Empty)} at {Seg[SegCs].Selector:x4}:{Rip:x16}" +
                         (vector == ExceptionVector.PageFault ? $" cr2={Cr2:x16}" : string.Empty));
    }

    private void TraceLine(string text) => _trace?.WriteLine("  ** " + text);
}
