using System.Globalization;

namespace BindProxy.Interception;

/// <summary>
/// What interception needs from the machine, checked before anything is started so a missing
/// piece is one message, not a half-started command: Linux, CAP_NET_ADMIN (nftables), write
/// access to a cgroup v2 hierarchy, and libnftables.
/// </summary>
internal static class InterceptionSupport
{
    private const int CapNetAdmin = 12;

    /// <summary>Why interception cannot work on this OS, or null on Linux.</summary>
    public static string? UnsupportedOs()
    {
        if (OperatingSystem.IsLinux())
        {
            return null;
        }

        var why = OperatingSystem.IsMacOS()
            ? "macOS has no per-process redirect with an original-destination lookup built in here (pf's rdr rules plus the DIOCNATLOOK ioctl on /dev/pf are the known way; not built)"
            : "it needs Linux's netfilter (nftables redirect, SO_ORIGINAL_DST) and cgroup v2";
        return $"bindproxy exec is not supported on this OS: {why}. Point the client at a listener instead (bindproxy --listen ... --upstream ... --source ...).";
    }

    /// <summary>True when this process holds CAP_NET_ADMIN in its effective set (root normally does).</summary>
    public static bool HasNetAdmin()
    {
        try
        {
            var line = File.ReadLines("/proc/self/status").FirstOrDefault(l => l.StartsWith("CapEff:", StringComparison.Ordinal));
            return line is not null &&
                ulong.TryParse(line["CapEff:".Length..].Trim(), NumberStyles.HexNumber, CultureInfo.InvariantCulture, out ulong caps) &&
                (caps & (1UL << CapNetAdmin)) != 0;
        }
        catch (IOException)
        {
            return false;
        }
    }

    /// <summary>
    /// The one message for missing pieces: what is missing, how to grant it, and how to do without
    /// interception.
    /// </summary>
    public static string Missing(IReadOnlyList<string> missing, string alternative)
    {
        var executable = Environment.ProcessPath ?? "bindproxy";
        var viaDotnet = Path.GetFileNameWithoutExtension(executable) == "dotnet";
        var setcap = viaDotnet
            ? "sudo setcap cap_net_admin+ep on a published BindProxy executable (dotnet publish), not on dotnet itself"
            : $"sudo setcap cap_net_admin+ep {executable}, with a cgroup delegated to your user (systemd-run --user --scope -p Delegate=yes bindproxy exec ...)";
        return "bindproxy exec cannot intercept the command's connections: " + string.Join("; ", missing) + ".\n" +
            $"  To grant it: run it as root (sudo bindproxy exec ...), or {setcap}.\n" +
            $"  Without interception: point the client at a listener instead: {alternative}";
    }
}
