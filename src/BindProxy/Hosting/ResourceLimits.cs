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

    /// <summary>Linux's ephemeral port range (<c>net.ipv4.ip_local_port_range</c>); the kernel default elsewhere.</summary>
    public static (int First, int Last) EphemeralPortRange()
    {
        try
        {
            var parts = File.ReadAllText("/proc/sys/net/ipv4/ip_local_port_range")
                .Split((char[])[' ', '\t', '\n'], StringSplitOptions.RemoveEmptyEntries);
            return (int.Parse(parts[0], CultureInfo.InvariantCulture), int.Parse(parts[1], CultureInfo.InvariantCulture));
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or FormatException or IndexOutOfRangeException)
        {
            return (32768, 60999);
        }
    }

    [StructLayout(LayoutKind.Sequential)]
    private readonly record struct RLimit(ulong Current, ulong Maximum);

    [LibraryImport("libc", EntryPoint = "getrlimit", SetLastError = true)]
    private static partial int GetRLimit(int resource, out RLimit limit);

    [LibraryImport("libc", EntryPoint = "setrlimit", SetLastError = true)]
    private static partial int SetRLimit(int resource, in RLimit limit);
}
