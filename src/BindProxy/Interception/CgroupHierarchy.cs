namespace BindProxy.Interception;

/// <summary>
/// Where the cgroup v2 hierarchy is mounted and where this process sits in it. Read from
/// <c>/proc/self/mountinfo</c> (a pure systemd system mounts it at <c>/sys/fs/cgroup</c>, a hybrid
/// one at <c>/sys/fs/cgroup/unified</c>) and <c>/proc/self/cgroup</c> (the line <c>0::/path</c>).
/// </summary>
/// <param name="MountPoint">The directory the hierarchy is mounted at.</param>
/// <param name="MountRoot">The hierarchy's path that the mount shows (<c>/</c> unless only a subtree is mounted).</param>
/// <param name="OwnGroup">This process's group, as a path in the hierarchy (<c>/</c> for the root).</param>
internal sealed record CgroupHierarchy(string MountPoint, string MountRoot, string OwnGroup)
{
    /// <summary>The hierarchy as this process sees it, or null with the reason.</summary>
    public static CgroupHierarchy? Find(out string error)
    {
        try
        {
            return Parse(File.ReadLines("/proc/self/mountinfo"), File.ReadLines("/proc/self/cgroup"), out error);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            error = $"cannot read /proc/self: {e.Message}";
            return null;
        }
    }

    /// <summary>
    /// Picks the cgroup2 mount (the one at <c>/sys/fs/cgroup</c> when there are several) from mountinfo lines:
    /// <code>
    /// 40 30 0:37 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
    /// id parent dev root mountpoint options [optional fields] - fstype source superoptions
    /// </code>
    /// </summary>
    public static CgroupHierarchy? Parse(IEnumerable<string> mountinfo, IEnumerable<string> procCgroup, out string error)
    {
        (string Point, string Root)? chosen = null;
        foreach (var line in mountinfo)
        {
            var dash = line.IndexOf(" - ", StringComparison.Ordinal);
            if (dash < 0)
            {
                continue;
            }

            var before = line[..dash].Split(' ');
            var after = line[(dash + 3)..].Split(' ');
            if (before.Length < 5 || after.Length < 1 || after[0] != "cgroup2")
            {
                continue;
            }

            var point = Unescape(before[4]);
            if (chosen is null || point == InterceptionRuleset.NftCgroupRoot)
            {
                chosen = (point, Unescape(before[3]));
            }
        }

        if (chosen is null)
        {
            error = "no cgroup v2 hierarchy is mounted (mount -t cgroup2 none /sys/fs/cgroup)";
            return null;
        }

        // "0::/path" is the v2 hierarchy's line; v1 controllers have a number and names before it.
        var own = procCgroup.FirstOrDefault(l => l.StartsWith("0::", StringComparison.Ordinal))?[3..] ?? "/";
        error = "";
        return new CgroupHierarchy(chosen.Value.Point, chosen.Value.Root, own.Length == 0 ? "/" : own);
    }

    /// <summary>The directory of a group given by its path in the hierarchy, or null when this mount does not show it.</summary>
    public string? DirectoryOf(string group)
    {
        var root = MountRoot.TrimEnd('/');
        if (group != MountRoot && !group.StartsWith(root + "/", StringComparison.Ordinal))
        {
            return null;
        }

        var relative = group[root.Length..].TrimStart('/');
        return relative.Length == 0 ? MountPoint : Path.Combine(MountPoint, relative);
    }

    /// <summary>
    /// The depth below the hierarchy's root of the group at <paramref name="directory"/> (the root is
    /// 0): what nft's <c>socket cgroupv2 level</c> compares. Counted from the mount's own root, so a
    /// mount of a subtree still gives the group's depth in the whole hierarchy.
    /// </summary>
    public int LevelOf(string directory)
    {
        var relative = Path.GetRelativePath(MountPoint, directory);
        int below = relative == "." ? 0 : relative.Split('/', StringSplitOptions.RemoveEmptyEntries).Length;
        return MountRoot.Split('/', StringSplitOptions.RemoveEmptyEntries).Length + below;
    }

    // mountinfo escapes space, tab, newline and backslash as \ooo octal.
    private static string Unescape(string field) =>
        System.Text.RegularExpressions.Regex.Replace(field, @"\\([0-7]{3})", m => ((char)Convert.ToInt32(m.Groups[1].Value, 8)).ToString());
}
