using System.Runtime.InteropServices;
using System.Runtime.Versioning;

namespace BindProxy.Transport.Linux;

/// <summary>
/// What the kernel still holds of the bytes the proxy handed it for one socket's peer. A socket is
/// only closed once this is empty: a closed socket's unsent bytes belong to an orphan, which the
/// kernel may drop without FIN or RST (a slow reader's zero window backing off past two minutes,
/// or memory or orphan limits), and the peer would wait for them forever.
/// </summary>
/// <remarks>
/// Safe from any thread: the calls only read, and the <see cref="SafeHandle"/> is held across them,
/// so its descriptor cannot be closed and its number reused meanwhile.
/// </remarks>
[SupportedOSPlatform("linux")]
internal static unsafe class SendQueue
{
    // struct tcp_info offsets (linux/tcp.h): tcpi_notsent_bytes since 4.6, tcpi_snd_wnd since 5.4.
    private const int TcpInfoSize = 232;
    private const int NotSentOffset = 144;
    private const int PeerWindowOffset = 228;

    /// <summary>
    /// Bytes handed to the kernel and not yet acknowledged by the peer, a FIN counting as one
    /// (SIOCOUTQ); 0 when the socket is gone, as nothing more can be delivered then.
    /// </summary>
    public static int Unacknowledged(SafeHandle socket)
    {
        int bytes = 0;
        try
        {
            return Libc.Ioctl(socket, Libc.SiocOutq, &bytes) == 0 ? bytes : 0;
        }
        catch (ObjectDisposedException)
        {
            return 0; // closed meanwhile by its owner
        }
    }

    /// <summary>
    /// After this side's FIN was sent: true once nothing more will leave the socket — the peer has
    /// acknowledged everything, FIN included (FIN_WAIT2, TIME_WAIT, or CLOSE after LAST_ACK), or the
    /// connection is gone (reset). A reset leaves the unacknowledged count above 0 for good, so
    /// this looks at the TCP state, not at that count.
    /// </summary>
    public static bool Delivered(SafeHandle socket)
    {
        byte state = 0;
        uint length = 1; // tcpi_state is the first byte of struct tcp_info
        try
        {
            if (Libc.GetSockOpt(socket, Libc.IpProtoTcp, Libc.TcpInfo, &state, &length) != 0 || length < 1)
            {
                return true;
            }
        }
        catch (ObjectDisposedException)
        {
            return true;
        }

        return state is TcpFinWait2 or TcpTimeWait or TcpClose;
    }

    private const byte TcpFinWait2 = 5;
    private const byte TcpTimeWait = 6;
    private const byte TcpClose = 7;

    /// <summary>The socket's send side as the stall watchdog reads it; null when the kernel does not say.</summary>
    public static SendQueueInfo? Inspect(SafeHandle socket)
    {
        byte* info = stackalloc byte[TcpInfoSize];
        uint length = TcpInfoSize;
        try
        {
            if (Libc.GetSockOpt(socket, Libc.IpProtoTcp, Libc.TcpInfo, info, &length) != 0)
            {
                return null;
            }
        }
        catch (ObjectDisposedException)
        {
            return null;
        }

        int? window = length >= PeerWindowOffset + sizeof(uint) ? (int)Math.Min(*(uint*)(info + PeerWindowOffset), int.MaxValue) : null;
        int notSent = length >= NotSentOffset + sizeof(uint) ? (int)*(uint*)(info + NotSentOffset) : 0;
        return new SendQueueInfo(Unacknowledged(socket), notSent, window, Writable(socket));
    }

    /// <summary>Whether a send would take at least one byte now (poll POLLOUT).</summary>
    private static bool Writable(SafeHandle socket)
    {
        bool added = false;
        try
        {
            if (socket.IsClosed)
            {
                return false;
            }

            socket.DangerousAddRef(ref added);
            long pollfd = (uint)socket.DangerousGetHandle() | ((long)Libc.PollOut << 32); // struct pollfd { int fd; short events; short revents; }
            return Libc.Poll(&pollfd, 1, 0) == 1 && ((pollfd >> 48) & Libc.PollOut) != 0;
        }
        catch (ObjectDisposedException)
        {
            return false;
        }
        finally
        {
            if (added)
            {
                socket.DangerousRelease();
            }
        }
    }
}

