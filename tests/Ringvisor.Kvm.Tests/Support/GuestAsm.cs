// Assembles tiny test guests with Iced's Assembler.
using Iced.Intel;

namespace Ringvisor.Kvm.Tests.Support;

internal static class GuestAsm
{
    public static byte[] Assemble(int bitness, ulong address, Action<Assembler> build)
    {
        var a = new Assembler(bitness);
        build(a);
        using var ms = new MemoryStream();
        a.Assemble(new StreamCodeWriter(ms), address);
        return ms.ToArray();
    }
}
