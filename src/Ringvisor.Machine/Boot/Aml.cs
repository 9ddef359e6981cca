// A small encoder for the ACPI Machine Language subset the DSDT needs (ACPI 6.4 §20.2): names, scopes, devices,
// integers, packages and buffers, with the variable-length PkgLength prefix. Each helper returns the bytes of one
// term, so a namespace is written as nested calls, the way ASL nests.
using System.Buffers.Binary;
using System.Text;

namespace Ringvisor.Machine.Boot;

internal static class Aml
{
    // ACPI 6.4 §20.3: opcodes.
    private const byte ZeroOp = 0x00;
    private const byte OneOp = 0x01;
    private const byte NameOp = 0x08;
    private const byte BytePrefix = 0x0A;
    private const byte WordPrefix = 0x0B;
    private const byte DWordPrefix = 0x0C;
    private const byte QWordPrefix = 0x0E;
    private const byte ScopeOp = 0x10;
    private const byte BufferOp = 0x11;
    private const byte PackageOp = 0x12;
    private const byte ExtOpPrefix = 0x5B;
    private const byte DeviceOp = 0x82; // after ExtOpPrefix

    // ACPI 6.4 §20.2.2: name string prefixes.
    private const byte RootChar = (byte)'\\';
    private const byte DualNamePrefix = 0x2E;
    private const byte MultiNamePrefix = 0x2F;

    /// <summary>ScopeOp PkgLength NameString TermList.</summary>
    public static byte[] Scope(string path, params byte[][] terms) => Concat([ScopeOp], WithPkgLength(Concat(NameString(path), Concat(terms))));

    /// <summary>DeviceOp (ExtOpPrefix 0x82) PkgLength NameString TermList.</summary>
    public static byte[] Device(string name, params byte[][] terms) =>
        Concat([ExtOpPrefix, DeviceOp], WithPkgLength(Concat(NameString(name), Concat(terms))));

    /// <summary>NameOp NameString DataRefObject.</summary>
    public static byte[] Name(string name, byte[] value) => Concat([NameOp], NameString(name), value);

    /// <summary>PackageOp PkgLength NumElements PackageElementList (at most 255 elements).</summary>
    /// <exception cref="ArgumentOutOfRangeException">More than 255 elements (VarPackageOp would be needed).</exception>
    public static byte[] Package(params byte[][] elements)
    {
        if (elements.Length > byte.MaxValue)
        {
            throw new ArgumentOutOfRangeException(nameof(elements), elements.Length, "a PackageOp holds at most 255 elements");
        }

        return Concat([PackageOp], WithPkgLength(Concat([(byte)elements.Length], Concat(elements))));
    }

    /// <summary>BufferOp PkgLength BufferSize ByteList.</summary>
    public static byte[] Buffer(byte[] bytes) => Concat([BufferOp], WithPkgLength(Concat(Integer((ulong)bytes.Length), bytes)));

    /// <summary>The shortest integer encoding: ZeroOp, OneOp, or a Byte/Word/DWord/QWord constant.</summary>
    public static byte[] Integer(ulong value)
    {
        switch (value)
        {
            case 0:
                return [ZeroOp];
            case 1:
                return [OneOp];
            case <= byte.MaxValue:
                return [BytePrefix, (byte)value];
            case <= ushort.MaxValue:
                var w = new byte[3];
                w[0] = WordPrefix;
                BinaryPrimitives.WriteUInt16LittleEndian(w.AsSpan(1), (ushort)value);
                return w;
            case <= uint.MaxValue:
                var d = new byte[5];
                d[0] = DWordPrefix;
                BinaryPrimitives.WriteUInt32LittleEndian(d.AsSpan(1), (uint)value);
                return d;
            default:
                var q = new byte[9];
                q[0] = QWordPrefix;
                BinaryPrimitives.WriteUInt64LittleEndian(q.AsSpan(1), value);
                return q;
        }
    }

    /// <summary>
    /// EISAID("PNP0A03"): three letters of 5 bits each and four hex digits packed into a DWord, the byte order
    /// being that of the compressed ID (ACPI 6.4 §19.6.35).
    /// </summary>
    /// <exception cref="ArgumentException">Not three capital letters followed by four hex digits.</exception>
    public static byte[] EisaId(string id)
    {
        if (id.Length != 7 || !id[..3].All(c => c is >= 'A' and <= 'Z') || !id[3..].All(Uri.IsHexDigit))
        {
            throw new ArgumentException($"'{id}' is not an EISA ID (three capital letters, four hex digits)", nameof(id));
        }

        int c1 = id[0] - 0x40, c2 = id[1] - 0x40, c3 = id[2] - 0x40;
        int hex = Convert.ToInt32(id[3..], 16);
        uint value = (uint)(((c1 << 2) | (c2 >> 3)) & 0xFF)
            | ((uint)((((c2 & 7) << 5) | c3) & 0xFF) << 8)
            | ((uint)(hex >> 8) << 16)
            | ((uint)(hex & 0xFF) << 24);
        return Integer(value);
    }

    /// <summary>
    /// A NameString: an optional leading '\' (root) and dot-separated segments of up to four characters, padded
    /// with '_' (ACPI 6.4 §20.2.2).
    /// </summary>
    /// <exception cref="ArgumentException">A segment is empty, longer than four characters or uses other characters.</exception>
    public static byte[] NameString(string path)
    {
        var bytes = new List<byte>();
        string rest = path;
        if (rest.StartsWith('\\'))
        {
            bytes.Add(RootChar);
            rest = rest[1..];
        }

        string[] segments = rest.Length == 0 ? [] : rest.Split('.');
        if (segments.Length == 2)
        {
            bytes.Add(DualNamePrefix);
        }
        else if (segments.Length > 2)
        {
            bytes.Add(MultiNamePrefix);
            bytes.Add((byte)segments.Length);
        }

        foreach (string s in segments)
        {
            if (s.Length is 0 or > 4 || !(s[0] is '_' or (>= 'A' and <= 'Z')) || !s.All(c => c is '_' or (>= 'A' and <= 'Z') or (>= '0' and <= '9')))
            {
                throw new ArgumentException($"'{s}' in '{path}' is not an ACPI name segment", nameof(path));
            }

            bytes.AddRange(Encoding.ASCII.GetBytes(s.PadRight(4, '_')));
        }

        if (segments.Length == 0)
        {
            bytes.Add(0); // NullName
        }

        return [.. bytes];
    }

    /// <summary>
    /// Prefixes <paramref name="body"/> with its PkgLength (ACPI 6.4 §20.2.4), which counts itself: one byte up to
    /// 63, otherwise a lead byte holding the low nibble and the count of following bytes, which hold the rest.
    /// </summary>
    public static byte[] WithPkgLength(byte[] body)
    {
        int n = body.Length;
        byte[] prefix;
        if (n + 1 <= 0x3F)
        {
            prefix = [(byte)(n + 1)];
        }
        else
        {
            int extra = n + 2 < (1 << 12) ? 1 : n + 3 < (1 << 20) ? 2 : 3;
            int total = n + 1 + extra;
            if (total >= 1 << 28)
            {
                throw new ArgumentOutOfRangeException(nameof(body), n, "an AML package is limited to 2^28 bytes");
            }

            prefix = new byte[1 + extra];
            prefix[0] = (byte)((extra << 6) | (total & 0xF));
            for (int i = 0; i < extra; i++)
            {
                prefix[1 + i] = (byte)(total >> (4 + (8 * i)));
            }
        }

        return Concat(prefix, body);
    }

    public static byte[] Concat(params byte[][] parts)
    {
        var all = new byte[parts.Sum(p => p.Length)];
        int at = 0;
        foreach (var p in parts)
        {
            p.CopyTo(all, at);
            at += p.Length;
        }

        return all;
    }
}
