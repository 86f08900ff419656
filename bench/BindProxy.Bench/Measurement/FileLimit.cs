using System.Runtime.InteropServices;

namespace BindProxy.Bench.Measurement;

/// <summary>The process's RLIMIT_NOFILE, raised as far as the hard limit allows.</summary>
internal readonly record struct FileLimit(ulong Soft, ulong Hard, string? Error);

/// <summary>
/// Raises RLIMIT_NOFILE's soft limit to the hard limit. The .NET host usually does this too, but a
/// load tool must not depend on it: the reported limit is the one the run actually had.
/// </summary>
internal static partial class FileLimits
{
    // Linux: RLIMIT_NOFILE is 7 on x86-64 and arm64; rlim_t is 64-bit there.
    private const int RlimitNofile = 7;

    [StructLayout(LayoutKind.Sequential)]
    private struct RLimit
    {
        public ulong Current;
        public ulong Maximum;
    }

    public static FileLimit RaiseToHard()
    {
        if (!OperatingSystem.IsLinux())
        {
            return new FileLimit(0, 0, "not Linux");
        }

        if (GetRLimit(RlimitNofile, out var limit) != 0)
        {
            return new FileLimit(0, 0, $"getrlimit errno {Marshal.GetLastPInvokeError()}");
        }

        if (limit.Current < limit.Maximum)
        {
            var raised = new RLimit { Current = limit.Maximum, Maximum = limit.Maximum };
            if (SetRLimit(RlimitNofile, in raised) != 0)
            {
                return new FileLimit(limit.Current, limit.Maximum, $"setrlimit errno {Marshal.GetLastPInvokeError()}");
            }
        }

        return GetRLimit(RlimitNofile, out var after) == 0
            ? new FileLimit(after.Current, after.Maximum, null)
            : new FileLimit(0, 0, $"getrlimit errno {Marshal.GetLastPInvokeError()}");
    }

    [LibraryImport("libc", EntryPoint = "getrlimit", SetLastError = true)]
    private static partial int GetRLimit(int resource, out RLimit limit);

    [LibraryImport("libc", EntryPoint = "setrlimit", SetLastError = true)]
    private static partial int SetRLimit(int resource, in RLimit limit);
}
