using System.Globalization;
using System.Runtime.InteropServices;

namespace BindProxy.Bench.Measurement;

/// <summary>One reading of a process and all its descendants.</summary>
/// <param name="Processes">How many processes the tree had (0 when the root is gone).</param>
/// <param name="CpuSeconds">user+system time of live members plus what they reaped from dead children.</param>
/// <param name="RssKb">Sum of VmRSS; counts shared pages once per process.</param>
/// <param name="PssKb">Sum of Pss from smaps_rollup; shared pages are split between sharers.</param>
internal readonly record struct TreeSample(int Processes, double CpuSeconds, long RssKb, long PssKb);

/// <summary>
/// Reads /proc for a process tree. A proxy is one process (HAProxy, BindProxy), a master with workers
/// (nginx) or a process per connection (socat fork), so every figure covers the whole tree.
/// </summary>
internal static partial class ProcessTree
{
    private const int ScClkTck = 2;

    private static readonly double TicksPerSecond = ReadTicksPerSecond();

    public static TreeSample Sample(int rootPid)
    {
        var members = Members(rootPid);
        double ticks = 0;
        long rss = 0;
        long pss = 0;
        var alive = 0;
        foreach (var pid in members)
        {
            if (!TryReadStat(pid, out _, out var cpuTicks))
            {
                continue; // exited while we walked the tree
            }

            alive++;
            ticks += cpuTicks;
            rss += ReadKb($"/proc/{pid}/status", "VmRSS:");
            pss += ReadKb($"/proc/{pid}/smaps_rollup", "Pss:");
        }

        return new TreeSample(alive, ticks / TicksPerSecond, rss, pss);
    }

    /// <summary>The root and its descendants, found through each process's parent id.</summary>
    private static List<int> Members(int rootPid)
    {
        var children = new Dictionary<int, List<int>>();
        foreach (var dir in Directory.EnumerateDirectories("/proc"))
        {
            if (!int.TryParse(Path.GetFileName(dir), NumberStyles.None, CultureInfo.InvariantCulture, out var pid)
                || !TryReadStat(pid, out var parent, out _))
            {
                continue;
            }

            if (!children.TryGetValue(parent, out var list))
            {
                list = [];
                children[parent] = list;
            }

            list.Add(pid);
        }

        var result = new List<int>();
        if (!Directory.Exists($"/proc/{rootPid}"))
        {
            return result;
        }

        var pending = new Stack<int>();
        pending.Push(rootPid);
        while (pending.Count > 0 && result.Count < 1_000_000)
        {
            var pid = pending.Pop();
            result.Add(pid);
            if (children.TryGetValue(pid, out var kids))
            {
                foreach (var kid in kids)
                {
                    pending.Push(kid);
                }
            }
        }

        return result;
    }

    /// <summary>
    /// Reads ppid and utime+stime+cutime+cstime from /proc/PID/stat. The command name may hold
    /// spaces or parentheses, so fields are counted from the last ')'.
    /// </summary>
    private static bool TryReadStat(int pid, out int parent, out double cpuTicks)
    {
        parent = 0;
        cpuTicks = 0;
        string text;
        try
        {
            text = File.ReadAllText($"/proc/{pid}/stat");
        }
        catch (IOException)
        {
            return false;
        }
        catch (UnauthorizedAccessException)
        {
            return false;
        }

        var close = text.LastIndexOf(')');
        if (close < 0)
        {
            return false;
        }

        // After ')': state(3) ppid(4) ... utime(14) stime(15) cutime(16) cstime(17).
        var fields = text[(close + 2)..].Split(' ');
        if (fields.Length < 15)
        {
            return false;
        }

        parent = int.Parse(fields[1], CultureInfo.InvariantCulture);
        for (var i = 11; i <= 14; i++)
        {
            cpuTicks += long.Parse(fields[i], CultureInfo.InvariantCulture);
        }

        return true;
    }

    private static long ReadKb(string path, string key)
    {
        try
        {
            foreach (var line in File.ReadLines(path))
            {
                if (line.StartsWith(key, StringComparison.Ordinal))
                {
                    var digits = line[key.Length..].Trim().Split(' ')[0];
                    return long.Parse(digits, CultureInfo.InvariantCulture);
                }
            }
        }
        catch (IOException)
        {
        }
        catch (UnauthorizedAccessException)
        {
        }

        return 0;
    }

    private static double ReadTicksPerSecond()
    {
        if (!OperatingSystem.IsLinux())
        {
            return 100;
        }

        var ticks = SysConf(ScClkTck);
        return ticks > 0 ? ticks : 100;
    }

    [LibraryImport("libc", EntryPoint = "sysconf")]
    private static partial long SysConf(int name);
}
