// Finds the instructions of a unit: starting at the entry offset, every instruction reachable through fall-through and
// direct branches inside the same 4 KiB page, up to a size limit, that the compiler supports. The first unsupported
// instruction on a path, an instruction crossing the page end, and targets outside the page end that path (the unit
// exits there to the interpreter or to another unit).
using Iced.Intel;
using Ringvisor.Emulator.Decoding;

namespace Ringvisor.Emulator.Translation;

internal static class UnitBuilder
{
    /// <summary>Most instructions one unit holds (bounds compile time; longer regions continue in a second unit).</summary>
    public const int MaxInstructions = 256;

    private const int PageSize = 4096;

    /// <summary>
    /// Returns the unit's instructions sorted by offset (empty when the entry itself is unsupported). With
    /// <paramref name="executed"/>, instructions other than the entry are included only where it says the interpreter
    /// has run them: the region follows the paths actually taken (JIT time is spent on what runs, not on cold error
    /// paths), and the rest exits to the interpreter.
    /// </summary>
    /// <remarks>
    /// <paramref name="length"/> is 4096, or up to 4096 + 15 when <paramref name="page"/> continues with the first
    /// bytes of the next page (<see cref="CrossingPage"/>): then an instruction that starts in the page and ends in
    /// the next one can join the region (it is the region's last on its path: what follows it is on the next page).
    /// </remarks>
    public static List<UnitInstruction> Build(byte[] page, int entry, Func<int, bool>? executed = null, int length = PageSize)
    {
        var reader = new ByteArrayCodeReader(page, 0, length);
        var decoder = Decoder.Create(64, reader, 0, DecoderOptions.None);
        var found = new SortedDictionary<int, UnitInstruction>();
        var rejected = new HashSet<int>();
        var work = new Stack<int>();
        work.Push(entry);
        while (work.Count > 0 && found.Count < MaxInstructions)
        {
            int off = work.Pop();
            if (off < 0 || off >= PageSize || found.ContainsKey(off) || rejected.Contains(off))
            {
                continue;
            }

            if (off != entry && executed is not null && !executed(off))
            {
                continue;
            }

            reader.Position = off;
            decoder.IP = (ulong)off;
            decoder.Decode(out var ins);
            if (decoder.LastError != DecoderError.None || ins.Code == Code.INVALID)
            {
                // Crosses the page end (NoMoreBytes) or invalid: the interpreter handles it.
                rejected.Add(off);
                continue;
            }

            var op = FastOpBuilder.Build(ins);
            if (!UnitCompiler.Supports(ins, ref op, out var extra))
            {
                rejected.Add(off);
                continue;
            }

            var ui = new UnitInstruction(off, ins, op, extra);
            found.Add(off, ui);
            if (UnitCompiler.ExtraEndsPath(extra))
            {
                continue;
            }

            switch (op.Kind)
            {
                case FastKind.Jcc:
                    work.Push(ui.NextOffset);
                    PushTarget(work, ui);
                    break;
                case FastKind.Jmp:
                case FastKind.CallRel:
                    PushTarget(work, ui);
                    break;
                case FastKind.Ret:
                    break;
                default:
                    work.Push(ui.NextOffset);
                    break;
            }
        }

        return [.. found.Values];
    }

    private static void PushTarget(Stack<int> work, UnitInstruction ui)
    {
        long t = ui.BranchTarget;
        if (t is >= 0 and < PageSize)
        {
            work.Push((int)t);
        }
    }
}
