using BindProxy.Interception;

namespace BindProxy.Tests.Interception;

public sealed class CgroupHierarchyTests
{
    private const string Hybrid = """
        30 22 0:27 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
        31 30 0:28 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu
        40 30 0:37 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
        """;

    [Fact]
    public void A_hybrid_system_has_cgroup_v2_under_unified()
    {
        var hierarchy = CgroupHierarchy.Parse(Hybrid.Split('\n'), ["4:memory:/x", "0::/user.slice/session-1.scope"], out var error);
        Assert.NotNull(hierarchy);
        Assert.Equal("", error);
        Assert.Equal("/sys/fs/cgroup/unified", hierarchy.MountPoint);
        Assert.Equal("/user.slice/session-1.scope", hierarchy.OwnGroup);
        Assert.Equal("/sys/fs/cgroup/unified/user.slice/session-1.scope", hierarchy.DirectoryOf(hierarchy.OwnGroup));
        Assert.Equal(3, hierarchy.LevelOf("/sys/fs/cgroup/unified/user.slice/session-1.scope/bindproxy-1"));
        Assert.Equal(1, hierarchy.LevelOf("/sys/fs/cgroup/unified/bindproxy-1"));
    }

    [Fact]
    public void The_mount_at_sys_fs_cgroup_wins_and_a_subtree_mount_counts_levels_from_the_hierarchys_root()
    {
        var lines = Hybrid.Split('\n').Append("62 30 0:37 /user.slice /sys/fs/cgroup rw,relatime - cgroup2 none rw");
        var hierarchy = CgroupHierarchy.Parse(lines, ["0::/user.slice/app"], out _);
        Assert.NotNull(hierarchy);
        Assert.Equal("/sys/fs/cgroup", hierarchy.MountPoint);
        Assert.Equal("/sys/fs/cgroup/app", hierarchy.DirectoryOf("/user.slice/app"));
        Assert.Null(hierarchy.DirectoryOf("/system.slice"));
        Assert.Equal(3, hierarchy.LevelOf("/sys/fs/cgroup/app/bindproxy-1"));
    }

    [Fact]
    public void No_cgroup2_mount_is_said_with_the_command_that_mounts_one()
    {
        Assert.Null(CgroupHierarchy.Parse(["30 22 0:27 / /sys/fs/cgroup rw - tmpfs tmpfs rw"], ["0::/"], out var error));
        Assert.Contains("mount -t cgroup2", error, StringComparison.Ordinal);
    }
}
