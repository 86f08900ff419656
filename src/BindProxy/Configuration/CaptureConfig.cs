namespace BindProxy.Configuration;

/// <summary>
/// The <c>Capture</c> section as the user wrote it: rolling pcapng capture files of the connections
/// its selectors pick (the same selectors as <c>/api/capture</c>), validated by <see cref="ConfigValidator"/>.
/// </summary>
internal sealed record CaptureConfig
{
    public const string SectionName = "Capture";

    /// <summary>The keys of the <c>Capture</c> section.</summary>
    public static FieldTable Fields { get; } = FieldTable.Of<CaptureConfig>(SectionName);

    [ConfigField("The directory of the rolling capture files (made if missing; it must be writable): `bindproxy-*.pcapng`, each opening on its own in Wireshark; `off` stops writing them. See [Capture files](#capture-files-for-long-tests).",
        Forms = "`captures`, `/var/tmp/bindproxy`, `off`",
        Unset = "required in a `Capture` section; without the section no capture files are written")]
    public string? Directory { get; init; }

    [ConfigField("Capture only this route's connections (a Kafka route with its broker listeners), as `route` of `/api/capture`.",
        Forms = "`kafka`", Unset = "every route")]
    public string? Route { get; init; }

    [ConfigField("Capture only this Kafka client.id's connections, as `client` of `/api/capture`.",
        Forms = "`orders-consumer`", Unset = "every client")]
    public string? Client { get; init; }

    [ConfigField("Capture only connections whose proxy source address or client address is in this set, as `source` of `/api/capture`.",
        Forms = "`127.0.0.3`, `127.0.0.2-127.0.0.9`, `127.0.0.0/29`", Unset = "every address")]
    public string? Source { get; init; }

    [ConfigField("Capture only this client process's connections, where the proxy knows it (intercepted routes, assignment by process), as `pid` of `/api/capture`.",
        Forms = "`4242`", Unset = "every process")]
    public string? Pid { get; init; }

    [ConfigField("Capture only connections of a client process whose command line contains this text, where the proxy knows it, as `process` of `/api/capture`.",
        Forms = "`kcat`", Unset = "every process")]
    public string? Process { get; init; }

    [ConfigField("Which legs of each connection: the client's, the upstream's or both.",
        Forms = "`both`, `client`, `upstream`", Default = "both")]
    public string? Legs { get; init; }

    [ConfigField("A file is closed and the next begun once it holds about this many megabytes.",
        Forms = "`100`, `0.5`", Default = "100")]
    public string? RotateMB { get; init; }

    [ConfigField("At most this many capture files are kept in the directory; the oldest is deleted when a new one begins.",
        Forms = "`10`", Default = "10")]
    public string? KeepFiles { get; init; }

    /// <summary>Keys present in the section that no field above reads (typos).</summary>
    public IReadOnlyList<string> UnknownFields { get; init; } = [];
}
