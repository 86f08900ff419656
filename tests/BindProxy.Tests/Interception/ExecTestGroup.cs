namespace BindProxy.Tests.Interception;

/// <summary>
/// Tests that run <c>bindproxy exec</c> share one thing across their network namespaces: the
/// cgroup v2 hierarchy (a mount of it in a new mount namespace shows the same groups). Run one at
/// a time, so one test's stale-group clean-up or group listing never sees another's run.
/// </summary>
[CollectionDefinition(Name)]
public sealed class ExecTestGroup
{
    public const string Name = "bindproxy exec (shared cgroup hierarchy)";
}
