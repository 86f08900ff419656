namespace BindProxy.Configuration;

/// <summary>
/// What the machine offers an intercepting route, asked while its configuration is validated:
/// the rules need privileges and nftables, a cgroup selector an existing group of the cgroup v2
/// hierarchy, and neither may select the proxy's own sockets.
/// </summary>
internal interface IInterceptionProbe
{
    /// <summary>What this process lacks to install interception rules, one phrase each; empty when nothing.</summary>
    IReadOnlyList<string> Missing();

    /// <summary>How to grant what <see cref="Missing"/> names.</summary>
    string HowToGrant { get; }

    /// <summary>
    /// The group at <paramref name="path"/> as a selector, or null with the reason: no cgroup v2
    /// hierarchy, a path outside it or that does not exist, or a group the proxy itself runs in.
    /// </summary>
    InterceptSelector.Cgroup? FindCgroup(string path, out string error);

    /// <summary>The uid that owns the sockets this process makes (its upstream connections); null when unknown.</summary>
    int? OwnUid { get; }
}
