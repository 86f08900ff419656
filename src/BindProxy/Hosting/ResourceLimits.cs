using System.Globalization;
using System.Runtime.InteropServices;

namespace BindProxy.Hosting;

/// <summary>Process limits that decide how many connections one proxy process can hold.</summary>
internal static partial class ResourceLimits
{
    private const int RlimitNofile = 7; // Linux <sys/resource.h>

    /// <summary>
    /// Raises the soft open-files limit to the hard limit (Linux) and returns the resulting soft
    /// limit, or null where it cannot be read.
    /// </summary>
    public static ulong? RaiseOpenFilesLimit()
    {
        if (!OperatingSystem.IsLinux())
        {
            return null;
        }

        if (GetRLimit(RlimitNofile, out var limit) != 0)
        {
            return null;
        }

        if (limit.Current < limit.Maximum)
        {
            var raised = limit with { Current = limit.Maximum };
            if (SetRLimit(RlimitNofile, in raised) == 0)
            {
                return raised.Current;
            }
        }

        return limit.Current;
    }

    /// <summary>Descriptors the process has open now (Linux: entries of /proc/self/fd); 0 where that cannot be read.</summary>
    public static int OpenDescriptors()
    {
        try
        {
            // The enumeration's own directory descriptor is among the entries: not counted.
            return Math.Max(0, Directory.EnumerateFileSystemEntries("/proc/self/fd").Count() - 1);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return 0;
        }
    }

    /// <summary>The kernel's default <c>net.ipv4.ip_local_port_range</c>.</summary>
    public static readonly (int First, int Last) DefaultEphemeralPortRange = (32768, 60999);

    /// <summary>Linux's ephemeral port range (<c>net.ipv4.ip_local_port_range</c>); the kernel default elsewhere.</summary>
    public static (int First, int Last) EphemeralPortRange()
    {
        string text;
        try
        {
            text = File.ReadAllText("/proc/sys/net/ipv4/ip_local_port_range");
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return DefaultEphemeralPortRange;
        }

        return ParsePortRange(text) ?? DefaultEphemeralPortRange;
    }

    /// <summary>
    /// The range in <paramref name="text"/> as the kernel writes it ("32768\t60999\n"); null
    /// unless it is two ports, the first not above the second.
    /// </summary>
    public static (int First, int Last)? ParsePortRange(string text)
    {
        var parts = text.Split((char[])[' ', '\t', '\n'], StringSplitOptions.RemoveEmptyEntries);
        return parts.Length == 2
            && int.TryParse(parts[0], NumberStyles.None, CultureInfo.InvariantCulture, out int first)
            && int.TryParse(parts[1], NumberStyles.None, CultureInfo.InvariantCulture, out int last)
            && first is >= 1 and <= 65535 && last is >= 1 and <= 65535 && first <= last
            ? (first, last)
            : null;
    }

    [StructLayout(LayoutKind.Sequential)]
    private readonly record struct RLimit(ulong Current, ulong Maximum);

    [LibraryImport("libc", EntryPoint = "getrlimit", SetLastError = true)]
    private static partial int GetRLimit(int resource, out RLimit limit);

    [LibraryImport("libc", EntryPoint = "setrlimit", SetLastError = true)]
    private static partial int SetRLimit(int resource, in RLimit limit);
}
