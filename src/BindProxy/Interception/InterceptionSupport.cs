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
    public static string? UnsupportedOs() => UnsupportedOsReason() is { } why
        ? $"bindproxy exec is not supported on this OS: {why}. Point the client at a listener instead (bindproxy --listen ... --upstream ... --source ...)."
        : null;

    /// <summary>Why this OS has no interception, or null on Linux.</summary>
    public static string? UnsupportedOsReason()
    {
        if (OperatingSystem.IsLinux())
        {
            return null;
        }

        return OperatingSystem.IsMacOS()
            ? "macOS has no per-process redirect with an original-destination lookup built in here (pf's rdr rules plus the DIOCNATLOOK ioctl on /dev/pf are the known way; not built)"
            : "it needs Linux's netfilter (nftables redirect, SO_ORIGINAL_DST) and cgroup v2";
    }

    /// <summary>
    /// What this process lacks to install nftables rules (Linux): CAP_NET_ADMIN and libnftables,
    /// one phrase each; empty when it has both.
    /// </summary>
    public static IReadOnlyList<string> MissingForRules()
    {
        var missing = new List<string>();
        if (!HasNetAdmin())
        {
            missing.Add($"CAP_NET_ADMIN, which installing nftables rules needs (this process runs as uid {OwnUid()?.ToString(CultureInfo.InvariantCulture) ?? "?"} without it)");
        }

        if (OperatingSystem.IsLinux())
        {
            if (Nftables.TryOpen(out var nft, out var nftError))
            {
                nft!.Dispose();
            }
            else
            {
                missing.Add(nftError);
            }
        }

        return missing;
    }

    /// <summary>
    /// The uid that owns the sockets this process makes: its filesystem uid (the fourth of the
    /// <c>Uid:</c> line of /proc/self/status), which is what nft's <c>meta skuid</c> compares. Null
    /// when it cannot be read.
    /// </summary>
    public static int? OwnUid()
    {
        try
        {
            var line = File.ReadLines("/proc/self/status").FirstOrDefault(l => l.StartsWith("Uid:", StringComparison.Ordinal));
            var fields = line?.Split(['\t', ' '], StringSplitOptions.RemoveEmptyEntries);
            return fields is { Length: >= 5 } && int.TryParse(fields[4], NumberStyles.None, CultureInfo.InvariantCulture, out int uid) ? uid : null;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return null;
        }
    }

    /// <summary>How to give a program CAP_NET_ADMIN without running it as root.</summary>
    public static string SetcapHint(string cgroupNote)
    {
        var executable = Environment.ProcessPath ?? "bindproxy";
        return Path.GetFileNameWithoutExtension(executable) == "dotnet"
            ? "sudo setcap cap_net_admin+ep on a published BindProxy executable (dotnet publish), not on dotnet itself"
            : $"sudo setcap cap_net_admin+ep {executable}{cgroupNote}";
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
        var setcap = SetcapHint(", with a cgroup delegated to your user (systemd-run --user --scope -p Delegate=yes bindproxy exec ...)");
        return "bindproxy exec cannot intercept the command's connections: " + string.Join("; ", missing) + ".\n" +
            $"  To grant it: run it as root (sudo bindproxy exec ...), or {setcap}.\n" +
            $"  Without interception: point the client at a listener instead: {alternative}";
    }
}
