using System.Globalization;
using System.Text;
using System.Text.RegularExpressions;
using BindProxy.Addressing;
using BindProxy.Configuration;

namespace BindProxy.Interception;

/// <summary>
/// The nft text of the proxy's interception rules (pure; applied by <see cref="InterceptionTable"/>).
/// One table per proxy process, <c>inet bindproxy_PID</c>, so its lifetime is the process's and a
/// table left by a killed process is recognised by its dead pid. Per route, a named set of
/// destination ports and one rule per address family in an output NAT chain:
/// <code>
/// table inet bindproxy_4242 {
///     set ports_exec { type inet_service; flags interval; auto-merge; elements = { 9092 } }
///     chain output {
///         type nat hook output priority -100; policy accept;
///         meta nfproto ipv4 socket cgroupv2 level 1 "bindproxy-4242" tcp dport @ports_exec redirect to :40123
///         meta nfproto ipv6 socket cgroupv2 level 1 "bindproxy-4242" tcp dport @ports_exec redirect to :40125
///     }
/// }
/// </code>
/// Ports found later are added to the set, so the rules never change while connections use them.
/// The selector (a cgroup, a uid) is what keeps the proxy's own upstream connections, which go to
/// the same ports, out of the redirect.
/// </summary>
internal static partial class InterceptionRuleset
{
    public const string TablePrefix = "bindproxy_";

    /// <summary>Where nft looks up a <c>socket cgroupv2</c> path: it is always taken relative to this directory.</summary>
    public const string NftCgroupRoot = "/sys/fs/cgroup";

    public static string TableName(int pid) => TablePrefix + pid.ToString(CultureInfo.InvariantCulture);

    /// <summary>The route's port set: <c>ports_</c> and the route name with anything but letters, digits and _ made _.</summary>
    public static string SetName(string route) => "ports_" + NotIdentifier().Replace(route, "_");

    /// <summary>The whole table, replacing a table of the same name if one is left over.</summary>
    public static string Table(string table, IReadOnlyList<InterceptedRoute> routes)
    {
        var text = new StringBuilder();
        // Adding then deleting first makes the install one transaction whether or not the table exists.
        text.Append(CultureInfo.InvariantCulture, $"table inet {table} {{}}\ndelete table inet {table}\ntable inet {table} {{\n");
        foreach (var route in routes)
        {
            text.Append(CultureInfo.InvariantCulture, $"\tset {SetName(route.Route)} {{\n\t\ttype inet_service\n\t\tflags interval\n\t\tauto-merge\n");
            if (!route.Settings.Ports.IsEmpty)
            {
                text.Append(CultureInfo.InvariantCulture, $"\t\telements = {{ {route.Settings.Ports.ToNftElements()} }}\n");
            }

            text.Append("\t}\n");
        }

        text.Append("\tchain output {\n\t\ttype nat hook output priority -100; policy accept;\n");
        foreach (var route in routes)
        {
            var match = Match(route.Settings.Selector);
            var set = SetName(route.Route);
            if (route.Ipv4Port is { } v4)
            {
                text.Append(CultureInfo.InvariantCulture, $"\t\tmeta nfproto ipv4 {match} tcp dport @{set} redirect to :{v4}\n");
            }

            if (route.Ipv6Port is { } v6)
            {
                text.Append(CultureInfo.InvariantCulture, $"\t\tmeta nfproto ipv6 {match} tcp dport @{set} redirect to :{v6}\n");
            }
        }

        text.Append("\t}\n}\n");
        return text.ToString();
    }

    public static string AddPorts(string table, string route, PortSet ports) =>
        $"add element inet {table} {SetName(route)} {{ {ports.ToNftElements()} }}";

    public static string DeleteTable(string table) => $"delete table inet {table}";

    public const string ListTables = "list tables inet";

    /// <summary>The proxy tables in <c>list tables</c> output, with the pid each was made by.</summary>
    public static IEnumerable<(string Table, int Pid)> ProxyTables(string listTablesOutput)
    {
        foreach (Match m in ProxyTableLine().Matches(listTablesOutput))
        {
            if (int.TryParse(m.Groups[2].Value, NumberStyles.None, CultureInfo.InvariantCulture, out int pid))
            {
                yield return (m.Groups[1].Value, pid);
            }
        }
    }

    /// <summary>The rule's match for the selected processes.</summary>
    public static string Match(InterceptSelector selector) => selector switch
    {
        // nft resolves the path to the group's id when the rule is loaded, relative to
        // /sys/fs/cgroup whatever the hierarchy's mount point (on hybrid systems cgroup v2 sits at
        // /sys/fs/cgroup/unified), so the path is written relative to that directory.
        InterceptSelector.Cgroup cgroup => string.Create(CultureInfo.InvariantCulture,
            $"socket cgroupv2 level {cgroup.Level} \"{Path.GetRelativePath(NftCgroupRoot, cgroup.Directory)}\""),
        InterceptSelector.Uid uid => string.Create(CultureInfo.InvariantCulture, $"meta skuid {uid.Value}"),
        _ => throw new ArgumentOutOfRangeException(nameof(selector), selector, "unknown selector"),
    };

    [GeneratedRegex("[^A-Za-z0-9_]")]
    private static partial Regex NotIdentifier();

    [GeneratedRegex(@"^table inet (bindproxy_(\d+))\s*$", RegexOptions.Multiline)]
    private static partial Regex ProxyTableLine();
}
