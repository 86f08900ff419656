using System.Buffers.Binary;
using System.Net;
using System.Net.Sockets;
using System.Runtime.InteropServices;
using System.Runtime.Versioning;

namespace BindProxy.Transport.Linux;

/// <summary>
/// Socket calls on raw descriptors owned by the relay engine (never by a .NET <see cref="Socket"/>,
/// so no second event loop watches them).
/// </summary>
[SupportedOSPlatform("linux")]
internal static unsafe class RawSocket
{
    private const int SockAddrMax = 28;

    // struct tcp_info starts with tcpi_state; the kernel copies as much of the struct as asked for.
    private const int TcpInfoStateSize = 8;
    private const byte TcpEstablished = 1;
    private const byte TcpCloseWait = 8;

    /// <summary>
    /// A non-blocking TCP socket bound to <paramref name="source"/> (port chosen at connect), with
    /// TCP_NODELAY; connect started towards <paramref name="destination"/>. Returns the socket, owned
    /// by the caller, and whether the connect is still in progress; throws
    /// <see cref="SocketException"/> on failure, having closed what it made.
    /// </summary>
    public static (SocketHandle Socket, bool InProgress) StartConnect(IPAddress source, IPEndPoint destination)
    {
        int family = source.AddressFamily == AddressFamily.InterNetworkV6 ? Libc.AfInet6 : Libc.AfInet;
        int created = Libc.Socket(family, Libc.SockStream | Libc.SockNonblock | Libc.SockCloexec, 0);
        if (created < 0)
        {
            throw Error(Libc.Errno);
        }

        var socket = new SocketHandle(created);
        int fd = socket.Fd;
        try
        {
            int on = 1;
            Libc.SetSockOpt(fd, Libc.IpProtoTcp, Libc.TcpNoDelay, &on, sizeof(int));
            // Defers the port choice to connect(), which picks per 4-tuple (kernels before 4.2 lack it).
            Libc.SetSockOpt(fd, Libc.IpProtoIp, Libc.IpBindAddressNoPort, &on, sizeof(int));

            byte* address = stackalloc byte[SockAddrMax];
            uint length = Encode(source, 0, address);
            if (Libc.Bind(fd, address, length) != 0)
            {
                throw Error(Libc.Errno);
            }

            length = Encode(destination.Address, destination.Port, address);
            while (Libc.Connect(fd, address, length) != 0)
            {
                int errno = Libc.Errno;
                if (errno == Libc.EInProgress)
                {
                    // On loopback the handshake has usually finished (or failed) by now, which a
                    // second connect() reports at once: 0 when established, EALREADY while the
                    // SYN is still out. That spares a trip through the event loop.
                    if (Libc.Connect(fd, address, length) == 0)
                    {
                        return (socket, false);
                    }

                    errno = Libc.Errno;
                    if (errno is Libc.EAlready or Libc.EIntr)
                    {
                        return (socket, true);
                    }

                    if (errno == Libc.EIsConn)
                    {
                        return (socket, false);
                    }
                }

                if (errno != Libc.EIntr)
                {
                    throw Error(errno);
                }
            }

            return (socket, false);
        }
        catch
        {
            socket.Dispose();
            throw;
        }
    }

    /// <summary>The pending error of a socket (SO_ERROR, cleared by reading it); 0 when none.</summary>
    public static int PendingError(SocketHandle socket)
    {
        int error = 0;
        uint length = sizeof(int);
        return Libc.GetSockOpt(socket.Fd, Libc.SolSocket, Libc.SoError, &error, &length) == 0 ? error : Libc.Errno;
    }

    public static IPEndPoint LocalEndPoint(SocketHandle socket)
    {
        byte* address = stackalloc byte[SockAddrMax];
        uint length = SockAddrMax;
        if (Libc.GetSockName(socket.Fd, address, &length) != 0)
        {
            throw Error(Libc.Errno);
        }

        return Decode(new ReadOnlySpan<byte>(address, (int)length));
    }

    /// <summary>
    /// Whether the peer has left: <see cref="PeerState.Closed"/> when its FIN is the next thing to
    /// read (it sent nothing before it that is still unread), <see cref="PeerState.Reset"/> when the
    /// connection is gone otherwise, else <see cref="PeerState.Open"/>. Reads nothing away and leaves
    /// a pending error in place (it looks at the TCP state), so it can be asked more than once.
    /// </summary>
    public static PeerState Peek(SocketHandle socket)
    {
        byte* info = stackalloc byte[TcpInfoStateSize];
        uint length = TcpInfoStateSize;
        if (Libc.GetSockOpt(socket.Fd, Libc.IpProtoTcp, Libc.TcpInfo, info, &length) != 0 || length < 1)
        {
            return PeerState.Reset;
        }

        switch (info[0])
        {
            case TcpEstablished:
                return PeerState.Open;
            case TcpCloseWait:
                byte one;
                return Libc.Recv(socket.Fd, &one, 1, Libc.MsgPeek | Libc.MsgDontWait) > 0 ? PeerState.Open : PeerState.Closed;
            default:
                return PeerState.Reset;
        }
    }

    /// <summary>
    /// Accepts one connection from a non-blocking listening socket: a non-blocking, close-on-exec
    /// socket with TCP_NODELAY, owned by the caller, and the client's address. Null with
    /// <paramref name="errno"/> set when there is none (EAGAIN) or accept failed. Throws
    /// <see cref="ObjectDisposedException"/> when the listening socket is closed (it stays open while accept4 runs).
    /// </summary>
    public static SocketHandle? Accept(SafeHandle listener, out IPEndPoint? client, out int errno)
    {
        byte* address = stackalloc byte[SockAddrMax];
        uint length = SockAddrMax;
        int fd = Libc.Accept4(listener, address, &length, Libc.SockNonblock | Libc.SockCloexec);
        if (fd < 0)
        {
            errno = Libc.Errno;
            client = null;
            return null;
        }

        var accepted = new SocketHandle(fd);
        int on = 1;
        Libc.SetSockOpt(fd, Libc.IpProtoTcp, Libc.TcpNoDelay, &on, sizeof(int));
        errno = 0;
        client = Decode(new ReadOnlySpan<byte>(address, (int)Math.Min(length, SockAddrMax)));
        return accepted;
    }

    /// <summary>Makes a socket non-blocking; a socket has no other status flag that F_SETFL changes.</summary>
    public static void SetNonBlocking(SafeHandle socket)
    {
        if (Libc.Fcntl(socket, Libc.FSetFl, Libc.ONonblock) < 0)
        {
            throw Error(Libc.Errno);
        }
    }

    /// <summary>A <see cref="SocketException"/> for a Linux errno, with the system's message.</summary>
    public static SocketException Error(int errno) => new((int)ToSocketError(errno), Marshal.GetPInvokeErrorMessage(errno));

    public static SocketError ToSocketError(int errno) => errno switch
    {
        4 => SocketError.Interrupted,
        11 => SocketError.WouldBlock,
        13 => SocketError.AccessDenied,
        Libc.ENFile or Libc.EMFile => SocketError.TooManyOpenSockets,
        32 => SocketError.Shutdown,
        97 => SocketError.AddressFamilyNotSupported,
        98 => SocketError.AddressAlreadyInUse,
        99 => SocketError.AddressNotAvailable,
        100 => SocketError.NetworkDown,
        101 => SocketError.NetworkUnreachable,
        103 => SocketError.ConnectionAborted,
        104 => SocketError.ConnectionReset,
        105 => SocketError.NoBufferSpaceAvailable,
        110 => SocketError.TimedOut,
        111 => SocketError.ConnectionRefused,
        113 => SocketError.HostUnreachable,
        115 => SocketError.InProgress,
        _ => SocketError.SocketError,
    };

    /// <summary>EMFILE or ENFILE: the process's or the system's table of open files is full.</summary>
    public static bool IsOutOfDescriptors(int errno) => errno is Libc.EMFile or Libc.ENFile;

    private static uint Encode(IPAddress ip, int port, byte* address)
    {
        var span = new Span<byte>(address, SockAddrMax);
        span.Clear();
        BinaryPrimitives.WriteUInt16BigEndian(span[2..], (ushort)port);
        if (ip.AddressFamily == AddressFamily.InterNetworkV6)
        {
            MemoryMarshal.Write(span, (ushort)Libc.AfInet6);
            ip.TryWriteBytes(span[8..24], out _);
            MemoryMarshal.Write(span[24..], (uint)ip.ScopeId);
            return 28;
        }

        MemoryMarshal.Write(span, (ushort)Libc.AfInet);
        ip.TryWriteBytes(span[4..8], out _);
        return 16;
    }

    private static IPEndPoint Decode(ReadOnlySpan<byte> address)
    {
        int port = BinaryPrimitives.ReadUInt16BigEndian(address[2..]);
        return MemoryMarshal.Read<ushort>(address) == Libc.AfInet6
            ? new IPEndPoint(new IPAddress(address[8..24], MemoryMarshal.Read<uint>(address[24..])), port)
            : new IPEndPoint(new IPAddress(address[4..8]), port);
    }
}
