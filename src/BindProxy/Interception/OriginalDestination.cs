using System.Buffers.Binary;
using System.Net;
using System.Net.Sockets;
using System.Runtime.InteropServices;

namespace BindProxy.Interception;

/// <summary>
/// Where a redirected connection was going: netfilter's NAT rewrote its destination to the
/// proxy's listener, and conntrack still knows the original, which Linux hands out on the
/// accepted socket as <c>SO_ORIGINAL_DST</c> (IPv4, level <c>SOL_IP</c>) or
/// <c>IP6T_SO_ORIGINAL_DST</c> (IPv6, level <c>SOL_IPV6</c>); both are option 80.
/// </summary>
internal static unsafe partial class OriginalDestination
{
    private const int SolIp = 0;
    private const int SolIpv6 = 41;
    private const int SoOriginalDst = 80;
    private const int SockaddrIn6Length = 28;
    private const ushort AfInet = 2;
    private const ushort AfInet6 = 10;

    /// <summary>
    /// The original destination of the accepted socket <paramref name="fd"/> of <paramref name="family"/>,
    /// or null when the connection was not redirected (no NAT entry: someone connected to the
    /// listener directly) or the platform has no such option.
    /// </summary>
    public static IPEndPoint? Read(int fd, AddressFamily family)
    {
        if (!OperatingSystem.IsLinux())
        {
            return null;
        }

        Span<byte> address = stackalloc byte[SockaddrIn6Length];
        uint length = (uint)address.Length;
        int level = family == AddressFamily.InterNetworkV6 ? SolIpv6 : SolIp;
        fixed (byte* buffer = address)
        {
            if (GetSockOpt(fd, level, SoOriginalDst, buffer, &length) != 0)
            {
                return null;
            }
        }

        return Decode(address[..(int)Math.Min(length, (uint)address.Length)]);
    }

    /// <summary>The same for a .NET socket.</summary>
    public static IPEndPoint? Read(Socket socket)
    {
        if (!OperatingSystem.IsLinux())
        {
            return null;
        }

        Span<byte> address = stackalloc byte[SockaddrIn6Length];
        int level = socket.AddressFamily == AddressFamily.InterNetworkV6 ? SolIpv6 : SolIp;
        try
        {
            int length = socket.GetRawSocketOption(level, SoOriginalDst, address);
            return Decode(address[..length]);
        }
        catch (SocketException)
        {
            return null;
        }
    }

    /// <summary>
    /// Decodes a <c>sockaddr_in</c> or <c>sockaddr_in6</c>:
    /// <code>
    /// sockaddr_in   family u16 (host order) | port u16 (big-endian) | addr [4]  | zero [8]
    /// sockaddr_in6  family u16 (host order) | port u16 (big-endian) | flowinfo u32 | addr [16] | scope_id u32
    /// </code>
    /// </summary>
    public static IPEndPoint? Decode(ReadOnlySpan<byte> address)
    {
        if (address.Length < 8)
        {
            return null;
        }

        ushort family = MemoryMarshal.Read<ushort>(address);
        int port = BinaryPrimitives.ReadUInt16BigEndian(address[2..]);
        if (family == AfInet)
        {
            return new IPEndPoint(new IPAddress(address.Slice(4, 4)), port);
        }

        if (family == AfInet6 && address.Length >= 24)
        {
            uint scope = address.Length >= SockaddrIn6Length ? MemoryMarshal.Read<uint>(address[24..]) : 0;
            return new IPEndPoint(new IPAddress(address.Slice(8, 16), scope), port);
        }

        return null;
    }

    [LibraryImport("libc", EntryPoint = "getsockopt", SetLastError = true)]
    private static partial int GetSockOpt(int fd, int level, int name, void* value, uint* length);
}
