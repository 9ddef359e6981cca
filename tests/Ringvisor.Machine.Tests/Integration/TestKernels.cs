// Multiboot v1 test kernels (a.out kludge: a flat binary with the header at offset 0), assembled with Iced.
using Iced.Intel;
using static Iced.Intel.AssemblerRegisters;

namespace Ringvisor.Machine.Tests.Integration;

internal static class TestKernels
{
    public const uint LoadAddress = 0x10_0000;
    public const uint ResultArea = 0x8_0000;
    public const ushort Com1 = 0x3F8;
    public const ushort DebugExitPort = 0xF4;
    private const int HeaderSize = 32;

    /// <summary>
    /// Checks the multiboot magic, prints the command line on COM1, copies the memory map to
    /// <see cref="ResultArea"/> (length at ResultArea - 4, flags at ResultArea - 8), then exits through
    /// debug-exit with <paramref name="exitValue"/> (or 0x7F when EAX held the wrong magic).
    /// </summary>
    public static byte[] EchoCommandLineAndMemoryMap(uint exitValue)
    {
        var a = new Assembler(32);
        var fail = a.CreateLabel();
        var print = a.CreateLabel();
        var printed = a.CreateLabel();
        var copy = a.CreateLabel();
        var copied = a.CreateLabel();
        a.cmp(eax, 0x2BAD_B002);
        a.jne(fail);
        a.mov(edi, ResultArea - 8);
        a.mov(eax, __dword_ptr[ebx]); // flags
        a.mov(__dword_ptr[edi], eax);
        a.mov(esi, __dword_ptr[ebx + 16]); // cmdline
        a.mov(dx, Com1);
        a.Label(ref print);
        a.mov(al, __byte_ptr[esi]);
        a.test(al, al);
        a.jz(printed);
        a.@out(dx, al);
        a.inc(esi);
        a.jmp(print);
        a.Label(ref printed);
        a.mov(ecx, __dword_ptr[ebx + 44]); // mmap_length
        a.mov(__dword_ptr[ResultArea - 4], ecx);
        a.mov(esi, __dword_ptr[ebx + 48]); // mmap_addr
        a.mov(edi, ResultArea);
        a.Label(ref copy);
        a.test(ecx, ecx);
        a.jz(copied);
        a.mov(al, __byte_ptr[esi]);
        a.mov(__byte_ptr[edi], al);
        a.inc(esi);
        a.inc(edi);
        a.dec(ecx);
        a.jmp(copy);
        a.Label(ref copied);
        a.mov(eax, exitValue);
        a.mov(dx, DebugExitPort);
        a.@out(dx, eax);
        a.hlt();
        a.Label(ref fail);
        a.mov(eax, 0x7F);
        a.mov(dx, DebugExitPort);
        a.@out(dx, eax);
        a.hlt();
        return Wrap(a);
    }

    /// <summary>Spins forever with interrupts disabled.</summary>
    public static byte[] SpinForever()
    {
        var a = new Assembler(32);
        var l = a.CreateLabel();
        a.cli();
        a.Label(ref l);
        a.jmp(l);
        return Wrap(a);
    }

    /// <summary>Prints "hi" then halts with interrupts disabled forever.</summary>
    public static byte[] HaltWithInterruptsDisabled()
    {
        var a = new Assembler(32);
        a.cli();
        a.mov(dx, Com1);
        a.mov(al, (byte)'h');
        a.@out(dx, al);
        a.mov(al, (byte)'i');
        a.@out(dx, al);
        a.hlt();
        return Wrap(a);
    }

    /// <summary>Pulses the reset line through the i8042 (command 0xFE on port 0x64).</summary>
    public static byte[] I8042Reset()
    {
        var a = new Assembler(32);
        a.mov(al, 0xFE);
        a.@out(0x64, al);
        a.hlt();
        return Wrap(a);
    }

    /// <summary>Loads an empty IDT and raises #BP: #BP → #GP → #DF cannot be delivered → triple fault.</summary>
    public static byte[] TripleFault()
    {
        var a = new Assembler(32);
        a.mov(__dword_ptr[ResultArea], 0); // IDTR image: limit 0, base 0
        a.mov(__dword_ptr[ResultArea + 4], 0);
        a.lidt(__fword_ptr[ResultArea]);
        a.int3();
        a.hlt();
        return Wrap(a);
    }

    /// <summary>Increments the dword at <see cref="ResultArea"/> forever.</summary>
    public static byte[] CountForever()
    {
        var a = new Assembler(32);
        var l = a.CreateLabel();
        a.Label(ref l);
        a.inc(__dword_ptr[ResultArea]);
        a.jmp(l);
        return Wrap(a);
    }

    private static byte[] Wrap(Assembler a)
    {
        uint entry = LoadAddress + HeaderSize;
        var code = new MemoryStream();
        a.Assemble(new StreamCodeWriter(code), entry);
        var image = new byte[HeaderSize + code.Length];
        const uint magic = 0x1BAD_B002;
        const uint flags = 0x0001_0003; // page-align modules, want memory info, a.out kludge (multiboot spec §3.1.2)
        Span<uint> h = [magic, flags, unchecked(0u - magic - flags), LoadAddress, LoadAddress, 0, 0, entry];
        for (int i = 0; i < h.Length; i++)
        {
            BitConverter.TryWriteBytes(image.AsSpan(i * 4), h[i]);
        }

        code.ToArray().CopyTo(image, HeaderSize);
        return image;
    }
}
