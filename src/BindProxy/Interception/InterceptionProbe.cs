using BindProxy.Configuration;

namespace BindProxy.Interception;

/// <summary>What this machine and process offer an intercepting route of the configuration, as the validator asks it.</summary>
internal sealed class InterceptionProbe : IInterceptionProbe
{
    public IReadOnlyList<string> Missing() =>
        InterceptionSupport.UnsupportedOsReason() is { } unsupported ? [$"interception, which is not supported on this OS: {unsupported}"] : InterceptionSupport.MissingForRules();

    public string HowToGrant =>
        $"To grant it, run the proxy as root (sudo) or {InterceptionSupport.SetcapHint("")}; " +
        "without interception, give the route an Upstream instead and point its clients at its Listen";

    public int? OwnUid => InterceptionSupport.OwnUid();

    public InterceptSelector.Cgroup? FindCgroup(string path, out string error)
    {
        if (InterceptionSupport.UnsupportedOsReason() is { } unsupported)
        {
            error = $"cgroups need Linux: {unsupported}";
            return null;
        }

        var hierarchy = CgroupHierarchy.Find(out error);
        if (hierarchy is null)
        {
            return null;
        }

        return Resolve(hierarchy, path, Directory.Exists, out error);
    }

    /// <summary>
    /// The group at <paramref name="path"/> in <paramref name="hierarchy"/> (whose own group is the
    /// proxy's), or null with the reason; <paramref name="exists"/> tells whether a directory exists.
    /// </summary>
    internal static InterceptSelector.Cgroup? Resolve(CgroupHierarchy hierarchy, string path, Func<string, bool> exists, out string error)
    {
        var mount = hierarchy.MountPoint.TrimEnd('/');
        var directory = Path.TrimEndingDirectorySeparator(Path.GetFullPath(path.Trim()));
        if (directory != mount && !directory.StartsWith(mount + "/", StringComparison.Ordinal))
        {
            // A path in the hierarchy's own terms (/system.slice/x.service) is a near miss.
            var meant = path.StartsWith('/') ? hierarchy.DirectoryOf(path) : null;
            error = $"'{path}' is not in the cgroup v2 hierarchy, which is mounted at {hierarchy.MountPoint}" +
                (meant is not null && exists(meant) ? $"; did you mean {meant}?" : "");
            return null;
        }

        if (!exists(directory))
        {
            error = $"{directory} does not exist; create the group first (mkdir {directory}) and move the clients into it (echo PID > {directory}/cgroup.procs)";
            return null;
        }

        // The rule matches the group and every group below it: the proxy must be in neither.
        if (hierarchy.DirectoryOf(hierarchy.OwnGroup) is { } own && (own == directory || own.StartsWith(directory + "/", StringComparison.Ordinal)))
        {
            error = $"the proxy itself runs in {directory} (its group is {own}), so its own upstream connections would be redirected back into it; " +
                "select a group of the clients only";
            return null;
        }

        error = "";
        return new InterceptSelector.Cgroup(directory, hierarchy.LevelOf(directory));
    }
}
