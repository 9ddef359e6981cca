// Server-side UNIX stream sockets shared by the virtual switch and the virtio-console socket ports: claiming the
// path (a stale socket file left by a dead process is replaced; a live server, a directory or a file holding data
// is never touched) and binding with one error path.
using System.Net.Sockets;

namespace Ringvisor.Net.Sockets;

public static class UnixListener
{
    /// <summary>Whether some process accepts connections at <paramref name="path"/> (a stale socket file does not).</summary>
    public static bool IsServed(string path)
    {
        using var probe = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        try
        {
            probe.Connect(new UnixDomainSocketEndPoint(path));
            return true;
        }
        catch (SocketException)
        {
            return false;
        }
    }

    /// <summary>
    /// Binds and listens at <paramref name="path"/> after clearing a stale socket file there. Failures become
    /// <paramref name="error"/>(reason, inner exception or null), so each caller keeps its own exception type and wording.
    /// </summary>
    public static Socket Listen(string path, int backlog, Func<string, Exception?, Exception> error)
    {
        if (Directory.Exists(path))
        {
            throw error("is a directory", null);
        }

        if (File.Exists(path))
        {
            if (IsServed(path))
            {
                throw error("another process is listening there", null);
            }

            // A socket file has size 0; refuse to delete anything that holds data.
            if (new FileInfo(path).Length != 0)
            {
                throw error("a file that is not a socket is in the way", null);
            }

            File.Delete(path);
        }

        var socket = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        try
        {
            socket.Bind(new UnixDomainSocketEndPoint(path));
            socket.Listen(backlog);
            return socket;
        }
        catch (SocketException e)
        {
            socket.Dispose();
            throw error(e.Message, e);
        }
    }
}
