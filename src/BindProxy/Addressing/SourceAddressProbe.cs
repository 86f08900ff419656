using System.Net;
using System.Net.Sockets;

namespace BindProxy.Addressing;

/// <summary>Checks that source addresses are assigned to this machine by test-binding them.</summary>
internal class SourceAddressProbe
{
    /// <summary>Pools larger than this are probed at evenly spaced addresses, first and last included.</summary>
    public const int MaxProbes = 1024;

    public IEnumerable<string> CheckAssigned(AddressSet sources)
    {
        var failed = new List<(IPAddress Address, string Reason)>();
        foreach (var address in Sample(sources))
        {
            if (TryBind(address) is { } reason)
            {
                failed.Add((address, reason));
            }
        }

        if (failed.Count == 0)
        {
            yield break;
        }

        var shown = string.Join(", ", failed.Take(5).Select(f => f.Address.ToString()));
        var more = failed.Count > 5 ? $" and {failed.Count - 5} more" : "";
        var message = $"{shown}{more} {(failed.Count == 1 ? "is" : "are")} not assigned to this machine (bind failed: {failed[0].Reason})";
        if (OperatingSystem.IsMacOS())
        {
            message += ". On macOS only 127.0.0.1 is up by default; add each address with: " +
                string.Join("; ", failed.Take(5).Select(f => $"sudo ifconfig lo0 alias {f.Address} up"));
        }
        else if (failed.Any(f => f.Address.AddressFamily == AddressFamily.InterNetworkV6))
        {
            message += ". Add the address to an interface (ip -6 addr add ADDR dev lo) or pick one that is there";
        }

        yield return message;
    }

    private static IEnumerable<IPAddress> Sample(AddressSet sources)
    {
        if (sources.Count <= MaxProbes)
        {
            return sources.Take(MaxProbes);
        }

        long step = sources.Count / (MaxProbes - 1);
        return Enumerable.Range(0, MaxProbes - 1).Select(i => sources[i * step]).Append(sources[sources.Count - 1]);
    }

    /// <summary>True when <paramref name="address"/> belongs to this machine (a socket can be bound to it).</summary>
    public bool IsAssigned(IPAddress address) => TryBind(address) is null;

    /// <summary>Returns null when <paramref name="address"/> can be bound, else the reason.</summary>
    protected virtual string? TryBind(IPAddress address)
    {
        try
        {
            using var socket = new Socket(address.AddressFamily, SocketType.Stream, ProtocolType.Tcp);
            socket.Bind(new IPEndPoint(address, 0));
            return null;
        }
        catch (SocketException e)
        {
            return e.Message;
        }
    }
}
