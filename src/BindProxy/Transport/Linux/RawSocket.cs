using System.Buffers.Binary;
using System.Net;
using System.Net.Sockets;
using System.Runtime.InteropServices;

namespace BindProxy.Transport.Linux;

/// <summary>
/// Socket calls on raw descriptors owned by the relay engine (never by a .NET <see cref="Socket"/>,
/// so no second event loop watches them).
/// </summary>
internal static unsafe class RawSocket
{
    private const int SockAddrMax = 28;

    /// <summary>
    /// A non-blocking TCP socket bound to <paramref name="source"/> (port chosen at connect), with
    /// TCP_NODELAY; connect started towards <paramref name="destination"/>. Returns the descriptor
    /// and whether the connect is still in progress; throws <see cref="SocketException"/> on failure.
    /// </summary>
    public static (int Fd, bool InProgress) StartConnect(IPAddress source, IPEndPoint destination)
    {
        int family = source.AddressFamily == AddressFamily.InterNetworkV6 ? Libc.AfInet6 : Libc.AfInet;
        int fd = Libc.Socket(family, Libc.SockStream | Libc.SockNonblock | Libc.SockCloexec, 0);
        if (fd < 0)
        {
            throw Error(Libc.Errno);
        }

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
                        return (fd, false);
                    }

                    errno = Libc.Errno;
                    if (errno is Libc.EAlready or Libc.EIntr)
                    {
                        return (fd, true);
                    }

                    if (errno == Libc.EIsConn)
                    {
                        return (fd, false);
                    }
                }

                if (errno != Libc.EIntr)
                {
                    throw Error(errno);
                }
            }

            return (fd, false);
        }
        catch
        {
            Libc.Close(fd);
            throw;
        }
    }

    /// <summary>The pending error of a socket (SO_ERROR, cleared by reading it); 0 when none.</summary>
    public static int PendingError(int fd)
    {
        int error = 0;
        uint length = sizeof(int);
        return Libc.GetSockOpt(fd, Libc.SolSocket, Libc.SoError, &error, &length) == 0 ? error : Libc.Errno;
    }

    public static IPEndPoint LocalEndPoint(int fd)
    {
        byte* address = stackalloc byte[SockAddrMax];
        uint length = SockAddrMax;
        if (Libc.GetSockName(fd, address, &length) != 0)
        {
            throw Error(Libc.Errno);
        }

        return Decode(new ReadOnlySpan<byte>(address, (int)length));
    }

    /// <summary>Closes with SO_LINGER 0, so the peer gets RST instead of FIN.</summary>
    public static void CloseAbortive(int fd)
    {
        long linger = 1; // struct linger { int l_onoff = 1; int l_linger = 0; }
        Libc.SetSockOpt(fd, Libc.SolSocket, Libc.SoLinger, &linger, sizeof(long));
        Libc.Close(fd);
    }

    /// <summary>
    /// Accepts one connection from a non-blocking listening socket: a non-blocking, close-on-exec
    /// descriptor with TCP_NODELAY, and the client's address. -1 with <paramref name="errno"/> set
    /// when there is none (EAGAIN) or accept failed.
    /// </summary>
    public static int Accept(int listenFd, out IPEndPoint? client, out int errno)
    {
        byte* address = stackalloc byte[SockAddrMax];
        uint length = SockAddrMax;
        int fd = Libc.Accept4(listenFd, address, &length, Libc.SockNonblock | Libc.SockCloexec);
        if (fd < 0)
        {
            errno = Libc.Errno;
            client = null;
            return -1;
        }

        int on = 1;
        Libc.SetSockOpt(fd, Libc.IpProtoTcp, Libc.TcpNoDelay, &on, sizeof(int));
        errno = 0;
        client = Decode(new ReadOnlySpan<byte>(address, (int)Math.Min(length, SockAddrMax)));
        return fd;
    }

    /// <summary>Makes a descriptor non-blocking; a socket has no other status flag that F_SETFL changes.</summary>
    public static void SetNonBlocking(int fd)
    {
        if (Libc.Fcntl(fd, Libc.FSetFl, Libc.ONonblock) < 0)
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
        23 or 24 => SocketError.TooManyOpenSockets,
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
