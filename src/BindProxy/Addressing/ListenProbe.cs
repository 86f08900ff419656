using System.Net;
using System.Net.Sockets;

namespace BindProxy.Addressing;

/// <summary>
/// Checks that an endpoint can be listened on by doing it for a moment, and says why not in the
/// user's words: in use (and by which process, where the OS tells), or not permitted.
/// </summary>
internal static class ListenProbe
{
    /// <summary>Returns null when <paramref name="endpoint"/> can be listened on, else the reason.</summary>
    /// <param name="kestrel">
    /// Bound as Kestrel binds its HTTP endpoints (Http routes, the admin endpoint), which make
    /// <c>[::]</c> dual-stack; the proxy's own listeners are IPv6 only.
    /// </param>
    public static string? Check(IPEndPoint endpoint, bool kestrel = false)
    {
        try
        {
            using var socket = new Socket(endpoint.AddressFamily, SocketType.Stream, ProtocolType.Tcp);
            if (endpoint.AddressFamily == AddressFamily.InterNetworkV6)
            {
                socket.DualMode = kestrel && endpoint.Address.Equals(IPAddress.IPv6Any);
            }

            socket.Bind(endpoint);
            socket.Listen(1);
            return null;
        }
        catch (SocketException e)
        {
            return Describe(endpoint, e);
        }
    }

    /// <summary>The reason a listener on <paramref name="endpoint"/> failed with <paramref name="error"/>.</summary>
    public static string Describe(IPEndPoint endpoint, SocketException error) => error.SocketErrorCode switch
    {
        SocketError.AddressAlreadyInUse => $"{endpoint} is in use {Holder(endpoint)}",
        SocketError.AccessDenied => $"{endpoint}: permission denied" +
            (endpoint.Port < 1024 ? "; ports below 1024 need root or CAP_NET_BIND_SERVICE (Linux: or lower net.ipv4.ip_unprivileged_port_start)" : ""),
        SocketError.AddressNotAvailable => $"{endpoint}: {endpoint.Address} is not assigned to this machine",
        _ => $"{endpoint}: cannot listen ({error.Message})",
    };

    private static string Holder(IPEndPoint endpoint)
    {
        if (ProcessLookup.FindListener(endpoint) is not { } holder)
        {
            return ProcessLookup.IsSupported
                ? "by another process (not one this user may look at, or a socket that is bound but not listening)"
                : "by another process";
        }

        var line = ProcessLookup.CommandLine(holder.Pid);
        var command = line is not null ? Shorten(line) : holder.Name;
        return holder.Pid == Environment.ProcessId ? "by this process"
            : IsBindProxy(line ?? holder.Name) ? $"by pid {holder.Pid} ({command}), a BindProxy already running"
            : $"by pid {holder.Pid} ({command})";
    }

    /// <summary>
    /// Whether a command line runs BindProxy: its own binary (a published build, the .NET tool,
    /// the one <c>dotnet run</c> starts) or <c>dotnet BindProxy.dll</c>.
    /// </summary>
    internal static bool IsBindProxy(string commandLine)
    {
        var words = commandLine.Split(' ', 3, StringSplitOptions.RemoveEmptyEntries);
        if (words.Length == 0)
        {
            return false;
        }

        var program = Program(words[0]);
        if (string.Equals(program, "dotnet", StringComparison.OrdinalIgnoreCase) && words.Length > 1)
        {
            program = Program(words[1]);
        }

        return string.Equals(program, "BindProxy", StringComparison.OrdinalIgnoreCase);

        // The file name less .dll or .exe only: BindProxy.Bench is another program.
        static string Program(string path)
        {
            var name = Path.GetFileName(path);
            return name.EndsWith(".dll", StringComparison.OrdinalIgnoreCase) || name.EndsWith(".exe", StringComparison.OrdinalIgnoreCase) ? name[..^4] : name;
        }
    }

    private static string Shorten(string commandLine) =>
        commandLine.Length <= 100 ? commandLine : string.Concat(commandLine.AsSpan(0, 97), "...");
}
