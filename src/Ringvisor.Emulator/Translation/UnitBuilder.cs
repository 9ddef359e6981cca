// Finds the instructions of a unit: starting at the entry offset, every instruction reachable through fall-through and
// direct branches inside the same 4 KiB page, up to a size limit, that the compiler supports. The first unsupported
// instruction on a path, an instruction crossing the page end, and targets outside the page end that path (the unit
// exits there to the interpreter or to another unit) — unless the caller offers other pages: then direct branch and
// call targets on up to MaxPages - 1 other pages that the interpreter has run join the region (a trace across pages),
// and the instruction after a CALL joins it too, so a RET can come back inside the unit (UnitCompiler's return
// prediction). Offsets are then relative to the entry page's start and may lie outside [0, 4096).
using Iced.Intel;
using Ringvisor.Emulator.Decoding;

namespace Ringvisor.Emulator.Translation;

internal static class UnitBuilder
{
    /// <summary>Most instructions one unit holds (bounds compile time; longer regions continue in a second unit).</summary>
    public const int MaxInstructions = 256;

    private const int PageSize = 4096;

    /// <summary>Pages one region may span (the entry page included): each costs a guard on the edges into it.</summary>
    public const int MaxPages = 4;

    /// <summary>Instructions a region may take from its other pages (bounds the code a trace duplicates from callees
    /// that have units of their own).</summary>
    public const int MaxOtherInstructions = 32;

    /// <summary>How far from the entry page another page of the region may lie (offsets stay well inside an int).</summary>
    private const long MaxDistance = 1L << 30;

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
    public static List<UnitInstruction> Build(byte[] page, int entry, Func<int, bool>? executed = null, int length = PageSize) =>
        Build(page, entry, executed, length, null, out _);

    /// <summary>As above; with <paramref name="otherPage"/> (the page at a given distance from the entry page, or null
    /// where the region must not go), the region may continue on other pages, returned in <paramref name="pages"/>.</summary>
    public static List<UnitInstruction> Build(byte[] page, int entry, Func<int, bool>? executed, int length, Func<int, RegionPage?>? otherPage, out List<RegionPage> pages)
    {
        var reader = new ByteArrayCodeReader(page, 0, length);
        var decoder = Decoder.Create(64, reader, 0, DecoderOptions.None);
        var found = new SortedDictionary<int, UnitInstruction>();
        var rejected = new HashSet<int>();
        var work = new Stack<int>();
        var others = new Dictionary<int, (RegionPage? Page, Decoder? Decoder, ByteArrayCodeReader? Reader)>();
        pages = [];
        int otherCount = 0;
        work.Push(entry);
        while (work.Count > 0 && found.Count < MaxInstructions)
        {
            int off = work.Pop();
            if (found.ContainsKey(off) || rejected.Contains(off))
            {
                continue;
            }

            var dec = decoder;
            if (off is < 0 or >= PageSize)
            {
                // Another page: only when offered, within the page budget, and where the interpreter has run.
                int delta = off & ~(PageSize - 1);
                if (otherPage is null || OtherPage(delta, otherPage, others, pages) is not { Page: { } rp } other ||
                    (rp.Executed is { } ran && !ran(off - delta)))
                {
                    continue;
                }

                if (otherCount >= MaxOtherInstructions)
                {
                    continue;
                }

                otherCount++;
                other.Reader!.Position = off - delta;
                dec = other.Decoder!;
            }
            else
            {
                if (off != entry && executed is not null && !executed(off))
                {
                    continue;
                }

                reader.Position = off;
            }

            dec.IP = (ulong)(long)off;
            dec.Decode(out var ins);
            var decoderError = dec.LastError;
            if (decoderError != DecoderError.None || ins.Code == Code.INVALID)
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
                    PushTarget(work, ui, otherPage is not null);
                    break;
                case FastKind.Jmp:
                    PushTarget(work, ui, otherPage is not null);
                    break;
                case FastKind.CallRel:
                    if (otherPage is not null)
                    {
                        // The return site, for a RET the region reaches; pushed first so the callee is visited first.
                        work.Push(ui.NextOffset);
                    }

                    PushTarget(work, ui, otherPage is not null);
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

    private static void PushTarget(Stack<int> work, UnitInstruction ui, bool otherPages)
    {
        long t = ui.BranchTarget;
        if (t is >= 0 and < PageSize || (otherPages && Math.Abs(t) < MaxDistance))
        {
            work.Push((int)t);
        }
    }

    /// <summary>The page at <paramref name="delta"/> with its decoder (Page null: not available), asked for once and
    /// remembered; past the page budget nothing new is asked for.</summary>
    private static (RegionPage? Page, Decoder? Decoder, ByteArrayCodeReader? Reader) OtherPage(int delta, Func<int, RegionPage?> otherPage, Dictionary<int, (RegionPage?, Decoder?, ByteArrayCodeReader?)> others, List<RegionPage> pages)
    {
        if (others.TryGetValue(delta, out var known))
        {
            return known;
        }

        if (pages.Count + 1 >= MaxPages)
        {
            return default;
        }

        var rp = otherPage(delta);
        if (rp is null)
        {
            return others[delta] = default;
        }

        var reader = new ByteArrayCodeReader(rp.Bytes, 0, PageSize);
        pages.Add(rp);
        return others[delta] = (rp, Decoder.Create(64, reader, 0, DecoderOptions.None), reader);
    }
}
