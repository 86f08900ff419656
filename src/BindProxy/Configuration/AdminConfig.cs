namespace BindProxy.Configuration;

/// <summary>The <c>Admin</c> section as the user wrote it: raw strings, validated by <see cref="ConfigValidator"/>.</summary>
internal sealed record AdminConfig
{
    public const string SectionName = "Admin";

    /// <summary>The keys of the <c>Admin</c> section.</summary>
    public static FieldTable Fields { get; } = FieldTable.Of<AdminConfig>(SectionName);

    // The admin endpoint is made once, at startup: both keys wait for a restart.
    [ConfigField("The admin HTTP endpoint (status page, `/metrics`, `/api/*`), on one address and port; `off` turns it off. `--admin` replaces it. See [Admin, metrics and status page](#admin-metrics-and-status-page).",
        Forms = "`127.0.0.1:9901`, `[::1]:9901`, `off`",
        Unset = "required in an `Admin` section; without the section the endpoint is off",
        Reload = FieldReload.Restart)]
    public string? Listen { get; init; }

    [ConfigField("`true` lets `Admin:Listen` be a non-loopback address, with a warning at startup: the endpoint has no authentication and shows every client's addresses.",
        Forms = "`true`, `false`", Default = "false",
        Reload = FieldReload.Restart)]
    public string? AllowNonLoopback { get; init; }

    /// <summary>Keys present in the section that no field above reads (typos).</summary>
    public IReadOnlyList<string> UnknownFields { get; init; } = [];
}
