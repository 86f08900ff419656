namespace BindProxy.Configuration;

/// <summary>The <c>Faults</c> section as the user wrote it: the fault API's listener, validated by <see cref="ConfigValidator"/>.</summary>
internal sealed record FaultsConfig
{
    public const string SectionName = "Faults";

    /// <summary>The keys of the <c>Faults</c> section.</summary>
    public static FieldTable Fields { get; } = FieldTable.Of<FaultsConfig>(SectionName);

    // The fault API's listener is made once, at startup, like the admin endpoint's.
    [ConfigField("The fault API (toxiproxy's HTTP API, v2), on one address and port; `off` turns it off. See [Faults](#faults-a-toxiproxy-compatible-api).",
        Forms = "`127.0.0.1:8474`, `[::1]:8474`, `off`",
        Unset = "required in a `Faults` section; without the section there is no fault API",
        Reload = FieldReload.Restart)]
    public string? Listen { get; init; }

    [ConfigField("`true` lets `Faults:Listen` be a non-loopback address, with a warning at startup: the fault API has no authentication and can break every route's traffic.",
        Forms = "`true`, `false`", Default = "false",
        Reload = FieldReload.Restart)]
    public string? AllowNonLoopback { get; init; }

    /// <summary>Keys present in the section that no field above reads (typos).</summary>
    public IReadOnlyList<string> UnknownFields { get; init; } = [];
}
