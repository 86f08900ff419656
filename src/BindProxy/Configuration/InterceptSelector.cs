namespace BindProxy.Configuration;

/// <summary>
/// Which processes' connections an interception redirects. Never "everything": the proxy's own
/// upstream connections would be redirected back to it.
/// </summary>
internal abstract record InterceptSelector
{
    private InterceptSelector()
    {
    }

    /// <summary>The processes of one cgroup v2 group and its descendants.</summary>
    /// <param name="Directory">The group's directory, e.g. <c>/sys/fs/cgroup/bindproxy-4242</c>.</param>
    /// <param name="Level">The group's depth below the hierarchy's root (the root is 0), as nft's <c>socket cgroupv2 level</c> wants it.</param>
    public sealed record Cgroup(string Directory, int Level) : InterceptSelector
    {
        public override string ToString() => $"cgroup {Directory}";
    }

    /// <summary>The processes running as one user.</summary>
    public sealed record Uid(int Value) : InterceptSelector
    {
        public override string ToString() => $"uid {Value}";
    }
}
