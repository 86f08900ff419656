using System.Collections.Concurrent;
using System.Diagnostics.CodeAnalysis;
using System.Globalization;
using System.Net;

namespace BindProxy.Addressing;

/// <summary>
/// Finds the local process that owns the other end of a loopback connection (Linux): the socket
/// table (<c>/proc/net/tcp</c>, <c>tcp6</c>) gives the client socket's inode, and
/// <c>/proc/PID/fd</c> links name its owner. Processes found before are searched first, so a
/// known client costs a look at its own descriptors rather than a scan of every process.
/// </summary>
internal sealed class ProcessLookup
{
    private readonly ConcurrentDictionary<int, ProcessInfo> _known = new();

    public static bool IsSupported => OperatingSystem.IsLinux() && Directory.Exists("/proc/net");

    /// <summary>The process whose socket is <paramref name="client"/> connected to <paramref name="proxy"/>, or null.</summary>
    public ProcessInfo? Find(IPEndPoint client, IPEndPoint proxy) => Find(client, proxy, null);

    /// <summary>
    /// The same, searching only <paramref name="candidates"/> when given (the processes of a cgroup):
    /// a scan of every process's descriptors costs more the busier the machine is.
    /// </summary>
    public ProcessInfo? Find(IPEndPoint client, IPEndPoint proxy, IReadOnlyCollection<int>? candidates)
    {
        if (!IsSupported || !IPAddress.IsLoopback(client.Address))
        {
            return null;
        }

        long inode = FindInode(client, proxy);
        if (inode <= 0)
        {
            return null;
        }

        var target = $"socket:[{inode}]";
        if (candidates is not null)
        {
            return candidates.FirstOrDefault(pid => Owns(pid, target)) is int owner and > 0 ? Describe(owner) : null;
        }

        foreach (var known in _known.Values)
        {
            if (Describe(known.Pid)?.StartTime != known.StartTime)
            {
                _known.TryRemove(known.Pid, out _); // exited (or its pid was reused): forget it
            }
            else if (Owns(known.Pid, target))
            {
                return known;
            }
        }

        foreach (var dir in Directory.EnumerateDirectories("/proc"))
        {
            if (int.TryParse(Path.GetFileName(dir), NumberStyles.None, CultureInfo.InvariantCulture, out int pid) &&
                !_known.ContainsKey(pid) && Owns(pid, target) && Describe(pid) is { } found)
            {
                _known[pid] = found;
                return found;
            }
        }

        return null;
    }

    /// <summary>The command line of <paramref name="pid"/> (arguments joined by spaces, cut at <paramref name="max"/> characters), or null.</summary>
    public static string? CommandLine(int pid, int max = 200)
    {
        try
        {
            // Arguments are NUL-separated; those and other control characters (a script's newlines) would break a log line.
            var line = string.Concat(File.ReadAllText($"/proc/{pid}/cmdline").TrimEnd('\0').Select(c => char.IsControl(c) ? ' ' : c));
            return line.Length <= max ? line : string.Concat(line.AsSpan(0, max - 1), "…");
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return null;
        }
    }

    private static long FindInode(IPEndPoint client, IPEndPoint proxy)
    {
        foreach (var (local, remote, _, inode) in SocketTable())
        {
            if (Same(local, client) && Same(remote, proxy))
            {
                return inode;
            }
        }

        return 0;
    }

    /// <summary>
    /// The process that holds a TCP socket listening on <paramref name="endpoint"/> (or on a
    /// wildcard address with its port), or null when there is none or the OS does not say whose
    /// it is (another user's process, or no /proc).
    /// </summary>
    public static ProcessInfo? FindListener(IPEndPoint endpoint)
    {
        if (!IsSupported)
        {
            return null;
        }

        const string Listen = "0A"; // TCP_LISTEN in include/net/tcp_states.h
        var inodes = SocketTable()
            .Where(s => s.State == Listen && s.Local.Port == endpoint.Port && SameOrWildcard(s.Local.Address, endpoint.Address))
            .Select(s => $"socket:[{s.Inode}]")
            .ToHashSet(StringComparer.Ordinal);
        if (inodes.Count == 0)
        {
            return null;
        }

        foreach (var dir in Directory.EnumerateDirectories("/proc"))
        {
            if (int.TryParse(Path.GetFileName(dir), NumberStyles.None, CultureInfo.InvariantCulture, out int pid) &&
                inodes.Any(inode => Owns(pid, inode)) && Describe(pid) is { } found)
            {
                return found;
            }
        }

        return null;
    }

    /// <summary>A process's command line on one line, or null when it cannot be read.</summary>
    public static string? CommandLine(int pid)
    {
        try
        {
            // Arguments are NUL-separated and may hold line breaks of their own: one line of words.
            var words = File.ReadAllText($"/proc/{pid}/cmdline").Split(['\0', ' ', '\t', '\r', '\n'], StringSplitOptions.RemoveEmptyEntries);
            return words.Length == 0 ? null : string.Join(' ', words);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return null;
        }
    }

    private static bool SameOrWildcard(IPAddress bound, IPAddress wanted) =>
        Same(bound, wanted) || OwnListeners.IsAny(bound) || OwnListeners.IsAny(wanted);

    private static bool Same(IPEndPoint a, IPEndPoint b) => a.Port == b.Port && Same(a.Address, b.Address);

    private static bool Same(IPAddress a, IPAddress b) =>
        (a.IsIPv4MappedToIPv6 ? a.MapToIPv4() : a).Equals(b.IsIPv4MappedToIPv6 ? b.MapToIPv4() : b);

    /// <summary>The rows of <c>/proc/net/tcp</c> and <c>tcp6</c>: local and remote endpoints, state (hex) and inode.</summary>
    private static IEnumerable<(IPEndPoint Local, IPEndPoint Remote, string State, long Inode)> SocketTable()
    {
        foreach (var file in new[] { "/proc/net/tcp", "/proc/net/tcp6" })
        {
            List<string> lines;
            try
            {
                lines = [.. File.ReadLines(file).Skip(1)];
            }
            catch (IOException)
            {
                continue;
            }

            foreach (var line in lines)
            {
                var f = line.Split(' ', StringSplitOptions.RemoveEmptyEntries);
                if (f.Length > 9 && TryParseEndpoint(f[1], out var local) && TryParseEndpoint(f[2], out var remote) &&
                    long.TryParse(f[9], NumberStyles.None, CultureInfo.InvariantCulture, out long inode) && inode > 0)
                {
                    yield return (local, remote, f[3], inode);
                }
            }
        }
    }

    // The kernel prints an address as the hex of its 32-bit words in host (little-endian) order.
    private static bool TryParseEndpoint(string field, [NotNullWhen(true)] out IPEndPoint? endpoint)
    {
        endpoint = null;
        int colon = field.IndexOf(':', StringComparison.Ordinal);
        if (colon < 0 || !int.TryParse(field.AsSpan(colon + 1), NumberStyles.HexNumber, CultureInfo.InvariantCulture, out int port))
        {
            return false;
        }

        var hex = field.AsSpan(0, colon);
        if (hex.Length is not (8 or 32))
        {
            return false;
        }

        var bytes = new byte[hex.Length / 2];
        for (int i = 0; i < bytes.Length; i++)
        {
            int word = i / 4, inWord = 3 - (i % 4);
            if (!byte.TryParse(hex.Slice((word * 4 + inWord) * 2, 2), NumberStyles.HexNumber, CultureInfo.InvariantCulture, out bytes[i]))
            {
                return false;
            }
        }

        endpoint = new IPEndPoint(new IPAddress(bytes), port);
        return true;
    }

    private static bool Owns(int pid, string target)
    {
        try
        {
            foreach (var fd in Directory.EnumerateFileSystemEntries($"/proc/{pid}/fd"))
            {
                var link = new FileInfo(fd).LinkTarget;
                if (link == target)
                {
                    return true;
                }
            }
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            // The process exited, or is not ours to look at.
        }

        return false;
    }

    private static ProcessInfo? Describe(int pid)
    {
        try
        {
            // /proc/PID/stat: "pid (comm) state ppid ..."; comm may hold spaces and parentheses,
            // so fields are counted from the last ')'. Field 22 is the start time in clock ticks.
            var stat = File.ReadAllText($"/proc/{pid}/stat");
            int close = stat.LastIndexOf(')');
            int open = stat.IndexOf('(', StringComparison.Ordinal);
            if (open < 0 || close < open || close + 2 > stat.Length)
            {
                return null;
            }

            var rest = stat[(close + 2)..].Split(' ');
            var name = stat[(open + 1)..close];
            return rest.Length > 19 && ulong.TryParse(rest[19], NumberStyles.None, CultureInfo.InvariantCulture, out ulong start)
                ? new ProcessInfo(pid, start, name)
                : null;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return null;
        }
    }
}
