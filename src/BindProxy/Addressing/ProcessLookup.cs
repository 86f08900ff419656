using System.Collections.Concurrent;
using System.Globalization;
using System.Net;

namespace BindProxy.Addressing;

/// <summary>A local process, told apart from a later one with the same pid by its start time.</summary>
internal sealed record ProcessInfo(int Pid, ulong StartTime, string Name)
{
    public string Key => $"pid:{Pid}@{StartTime}";

    public override string ToString() => $"pid {Pid} {Name}";
}

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
        foreach (var file in new[] { "/proc/net/tcp", "/proc/net/tcp6" })
        {
            try
            {
                foreach (var line in File.ReadLines(file).Skip(1))
                {
                    var f = line.Split(' ', StringSplitOptions.RemoveEmptyEntries);
                    if (f.Length > 9 && Matches(f[1], client) && Matches(f[2], proxy) &&
                        long.TryParse(f[9], NumberStyles.None, CultureInfo.InvariantCulture, out long inode) && inode > 0)
                    {
                        return inode;
                    }
                }
            }
            catch (IOException)
            {
            }
        }

        return 0;
    }

    // The kernel prints an address as the hex of its 32-bit words in host (little-endian) order.
    private static bool Matches(string field, IPEndPoint endpoint)
    {
        int colon = field.IndexOf(':', StringComparison.Ordinal);
        if (colon < 0 || !int.TryParse(field.AsSpan(colon + 1), NumberStyles.HexNumber, CultureInfo.InvariantCulture, out int port) || port != endpoint.Port)
        {
            return false;
        }

        var hex = field.AsSpan(0, colon);
        var address = endpoint.Address;
        if (hex.Length == 32 && address.AddressFamily == System.Net.Sockets.AddressFamily.InterNetwork)
        {
            address = address.MapToIPv6();
        }

        var bytes = address.GetAddressBytes();
        if (hex.Length != bytes.Length * 2)
        {
            return false;
        }

        for (int i = 0; i < bytes.Length; i++)
        {
            int word = i / 4, inWord = 3 - (i % 4);
            if (!byte.TryParse(hex.Slice((word * 4 + inWord) * 2, 2), NumberStyles.HexNumber, CultureInfo.InvariantCulture, out byte b) || b != bytes[i])
            {
                return false;
            }
        }

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
            var rest = stat[(close + 2)..].Split(' ');
            var name = stat[(open + 1)..close];
            return ulong.TryParse(rest[19], NumberStyles.None, CultureInfo.InvariantCulture, out ulong start)
                ? new ProcessInfo(pid, start, name)
                : null;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or IndexOutOfRangeException)
        {
            return null;
        }
    }
}
