using System.Net;
using System.Net.Sockets;

namespace BindProxy.Tests.Infrastructure;

/// <summary>Addresses for tests that need a source address this machine does not have.</summary>
public static class TestAddresses
{
    /// <summary>
    /// <paramref name="count"/> consecutive documentation addresses (RFC 5737) that fail to bind
    /// here with EADDRNOTAVAIL. Nothing is ever sent from or to them.
    /// </summary>
    public static string[] Unassigned(int count)
    {
        foreach (var prefix in new[] { "198.51.100.", "203.0.113.", "192.0.2." })
        {
            for (int start = 10; start < 250 - count; start += count)
            {
                var candidates = Enumerable.Range(start, count).Select(i => prefix + i).ToArray();
                if (candidates.All(IsUnassigned))
                {
                    return candidates;
                }
            }
        }

        throw new InvalidOperationException("no unassigned documentation addresses found on this machine");
    }

    private static bool IsUnassigned(string address)
    {
        using var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        try
        {
            socket.Bind(new IPEndPoint(IPAddress.Parse(address), 0));
            return false;
        }
        catch (SocketException e) when (e.SocketErrorCode == SocketError.AddressNotAvailable)
        {
            return true;
        }
    }
}
