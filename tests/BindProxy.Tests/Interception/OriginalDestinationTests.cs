using System.Net;
using BindProxy.Interception;

namespace BindProxy.Tests.Interception;

public sealed class OriginalDestinationTests
{
    [Fact]
    public void Decodes_sockaddr_in_and_sockaddr_in6()
    {
        byte[] v4 = [2, 0, 0x23, 0x84, 127, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0];
        Assert.Equal(IPEndPoint.Parse("127.0.0.1:9092"), OriginalDestination.Decode(v4));

        var v6 = new byte[28];
        v6[0] = 10;
        v6[2] = 0x23;
        v6[3] = 0x84;
        v6[23] = 1; // ::1
        Assert.Equal(IPEndPoint.Parse("[::1]:9092"), OriginalDestination.Decode(v6));
        Assert.Null(OriginalDestination.Decode(v4.AsSpan(0, 4)));
        Assert.Null(OriginalDestination.Decode(new byte[16]));
    }

    /// <summary>
    /// A connection nobody redirected: when conntrack does not track it, there is no original
    /// destination; when it does (some netfilter rule of this namespace wants conntrack), the
    /// original destination is the one the client connected to, the listener itself. Which of
    /// the two holds is read from conntrack's own table, so each case is asserted exactly.
    /// </summary>
    [Fact]
    public void A_connection_that_was_not_redirected_has_none_or_the_listener_itself()
    {
        Assert.SkipUnless(OperatingSystem.IsLinux(), "SO_ORIGINAL_DST is Linux's");
        using var listener = new System.Net.Sockets.Socket(System.Net.Sockets.SocketType.Stream, System.Net.Sockets.ProtocolType.Tcp);
        listener.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        listener.Listen();
        using var client = new System.Net.Sockets.Socket(System.Net.Sockets.SocketType.Stream, System.Net.Sockets.ProtocolType.Tcp);
        client.Connect(listener.LocalEndPoint!);
        using var accepted = listener.Accept();
        var original = OriginalDestination.Read(accepted);

        if (Tracked((IPEndPoint)client.LocalEndPoint!, (IPEndPoint)listener.LocalEndPoint!))
        {
            Assert.Equal(accepted.LocalEndPoint, original);
        }
        else
        {
            Assert.Null(original);
        }
    }

    /// <summary>Whether conntrack holds the connection from <paramref name="from"/> to <paramref name="to"/> (its table lists each one once).</summary>
    private static bool Tracked(IPEndPoint from, IPEndPoint to)
    {
        const string Table = "/proc/net/nf_conntrack";
        if (!File.Exists(Table))
        {
            return false; // conntrack is not loaded: nothing is tracked
        }

        var tuple = $"src={from.Address} dst={to.Address} sport={from.Port} dport={to.Port} ";
        return File.ReadLines(Table).Any(line => line.Contains(" tcp ", StringComparison.Ordinal) && line.Contains(tuple, StringComparison.Ordinal));
    }
}
