using System.Globalization;
using System.Runtime.Versioning;
using Microsoft.Extensions.Logging;

namespace BindProxy.Interception;

/// <summary>
/// A cgroup v2 group of the proxy's own, <c>bindproxy-PID</c>, for the command it runs: every
/// process the command starts stays in it (membership is inherited), which is what the nft rule
/// matches. Made beside the proxy (a child of its own group, so the command keeps the slice and
/// limits it was started under), or at the hierarchy's root when that is not writable.
/// </summary>
[SupportedOSPlatform("linux")]
internal sealed partial class CgroupGroup
{
    public const string NamePrefix = "bindproxy-";

    private readonly CgroupHierarchy _hierarchy;

    private CgroupGroup(CgroupHierarchy hierarchy, string directory)
    {
        _hierarchy = hierarchy;
        Directory = directory;
        Level = hierarchy.LevelOf(directory);
    }

    public string Directory { get; }

    /// <summary>Depth in the hierarchy, for nft's <c>socket cgroupv2 level</c>.</summary>
    public int Level { get; }

    /// <summary>The file a process writes its pid to, to move itself into the group.</summary>
    public string ProcsFile => Path.Combine(Directory, "cgroup.procs");

    /// <summary>Makes the group; null with the reason (permission, usually) when it cannot be made.</summary>
    public static CgroupGroup? Create(CgroupHierarchy hierarchy, int pid, out string error)
    {
        var name = NamePrefix + pid.ToString(CultureInfo.InvariantCulture);
        var parents = new[] { hierarchy.DirectoryOf(hierarchy.OwnGroup), hierarchy.MountPoint }.OfType<string>().Distinct().ToList();
        error = "";
        foreach (var parent in parents)
        {
            var directory = Path.Combine(parent, name);
            try
            {
                System.IO.Directory.CreateDirectory(directory);
                return new CgroupGroup(hierarchy, directory);
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                error = $"cannot create cgroup {directory}: {e.Message}";
            }
        }

        return null;
    }

    /// <summary>
    /// Removes the group. Processes of the command still in it (daemons it left behind) are moved
    /// to the proxy's own group first, since a group with processes cannot be removed; each
    /// move is logged.
    /// </summary>
    public void Remove(ILogger logger)
    {
        try
        {
            var left = File.ReadAllLines(ProcsFile).Where(l => l.Length > 0).ToList();
            if (left.Count > 0 && _hierarchy.DirectoryOf(_hierarchy.OwnGroup) is { } own)
            {
                Log.LeftBehind(logger, left.Count, Directory, string.Join(" ", left), own);
                foreach (var pid in left)
                {
                    try
                    {
                        File.WriteAllText(Path.Combine(own, "cgroup.procs"), pid);
                    }
                    catch (IOException)
                    {
                        // It exited meanwhile.
                    }
                }
            }

            System.IO.Directory.Delete(Directory);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            Log.NotRemoved(logger, Directory, e.Message);
        }
    }

    /// <summary>Groups of proxy processes that no longer run, left empty in <paramref name="parent"/>: removed, one log line each.</summary>
    public static void RemoveStale(string parent, ILogger logger)
    {
        try
        {
            foreach (var directory in System.IO.Directory.EnumerateDirectories(parent, NamePrefix + "*"))
            {
                if (int.TryParse(Path.GetFileName(directory)[NamePrefix.Length..], NumberStyles.None, CultureInfo.InvariantCulture, out int pid) &&
                    !InterceptionTable.IsRunning(pid) && File.ReadAllText(Path.Combine(directory, "cgroup.procs")).Length == 0)
                {
                    System.IO.Directory.Delete(directory);
                    Log.StaleRemoved(logger, directory, pid);
                }
            }
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            // Not ours to clean; creating the new group reports what matters.
        }
    }

    private static partial class Log
    {
        [LoggerMessage(920, LogLevel.Information, "Interception: removed cgroup {Directory} left by process {Pid}, which no longer runs")]
        public static partial void StaleRemoved(ILogger logger, string directory, int pid);

        [LoggerMessage(921, LogLevel.Warning, "Interception: {Count} process(es) of the command still run ({Pids}); moved from {Directory} to {Own}, no longer intercepted")]
        public static partial void LeftBehind(ILogger logger, int count, string directory, string pids, string own);

        [LoggerMessage(922, LogLevel.Warning, "Interception: cgroup {Directory} could not be removed: {Error}")]
        public static partial void NotRemoved(ILogger logger, string directory, string error);
    }
}
