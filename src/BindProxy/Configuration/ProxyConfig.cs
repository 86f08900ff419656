namespace BindProxy.Configuration;

/// <summary>The whole proxy configuration as written.</summary>
internal sealed record ProxyConfig
{
    public const string SectionName = "BindProxy";

    /// <summary>The keys of the <c>BindProxy</c> section.</summary>
    public static FieldTable Fields { get; } = FieldTable.Of<ProxyConfig>(SectionName);

    [ConfigField("The routes, each a section of the fields above under the route's name (the name logs, metrics and the admin API show).",
        Forms = """`{ "kafka": { "Listen": ..., "Upstream": ..., "Source": ... } }`""",
        Unset = "required, unless the command line gives the route (`--listen`, `--upstream`, `--source`)",
        Shape = FieldShape.Sections)]
    public IReadOnlyList<RouteConfig> Routes { get; init; } = [];

    [ConfigField("How long connections may take to finish at shutdown or when their route is removed; those still open then are reset.",
        Forms = "`00:00:30`", Default = "00:00:30")]
    public string? DrainTimeout { get; init; }

    [ConfigField("Once both sides of a connection have ended, how long it may wait with no progress for a peer to take the bytes still queued for it (a reader that stopped); then both sides are reset, and that is logged and counted (`flush_timeout`).",
        Forms = "`00:00:30`", Default = "00:00:30")]
    public string? FlushTimeout { get; init; }

    [ConfigField("How long bytes may wait in one direction of a connection with no progress, although the other side could take them, before the stall watchdog reports it (a warning, `bindproxy_connections_stalls_total`, `stalled` in `/api/connections`).",
        Forms = "`00:00:10`", Default = "00:00:10")]
    public string? StallTimeout { get; init; }

    [ConfigField("The forwarding engine of plain Tcp routes: `relay` (epoll; Linux x64 and arm64), `pipes` (System.IO.Pipelines; everywhere) or `auto`, the relay engine where it runs; `--engine` replaces it. See [Forwarding](#forwarding).",
        Forms = "`auto`, `relay`, `pipes`", Default = "auto",
        Reload = FieldReload.Restart)]
    public string? Engine { get; init; }

    /// <summary>The admin endpoint; null when the file has no <c>Admin</c> section.</summary>
    public AdminConfig? Admin { get; init; }

    /// <summary>The fault API; null when the file has no <c>Faults</c> section.</summary>
    public FaultsConfig? Faults { get; init; }

    /// <summary>Rolling capture files; null when the file has no <c>Capture</c> section.</summary>
    public CaptureConfig? Capture { get; init; }

    /// <summary>
    /// Keys above the route level that nothing reads, by path (<c>BindProxy:Rotues</c>, <c>Admn</c>),
    /// with the names that were expected where each was found.
    /// </summary>
    public IReadOnlyList<UnknownKey> UnknownKeys { get; init; } = [];
}
