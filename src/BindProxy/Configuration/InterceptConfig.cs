namespace BindProxy.Configuration;

/// <summary>
/// A route's <c>Intercept</c> section as the user wrote it: raw strings, validated by
/// <see cref="ConfigValidator"/> into <see cref="InterceptSettings"/>. The route keeps the section
/// as written (<see cref="RouteConfig.Intercept"/>), for the reload diff; this reads it.
/// </summary>
internal sealed record InterceptConfig
{
    /// <summary>The keys of a route's <c>Intercept</c> section.</summary>
    public static FieldTable Fields { get; } = FieldTable.Of<InterceptConfig>(nameof(RouteConfig.Intercept));

    [ConfigField("The destination ports whose connections are redirected to the route; a Kafka route adds every broker port it sees.",
        Forms = "`9092-9094,8081`, `5432`")]
    public string? Ports { get; init; }

    [ConfigField("Redirect the connections of the processes in this cgroup v2 group and its descendants (a systemd service's, for instance).",
        Forms = "`/sys/fs/cgroup/kafka-clients`", Unset = "one of `Cgroup` or `Uid` is required")]
    public string? Cgroup { get; init; }

    [ConfigField("Redirect the connections of the processes running as this user (not the proxy's own).",
        Forms = "`1000`", Unset = "one of `Cgroup` or `Uid` is required")]
    public string? Uid { get; init; }

    /// <summary>Keys present in the section that no field above reads (typos), in the order written.</summary>
    public IReadOnlyList<string> UnknownKeys { get; init; } = [];

    /// <summary>The section <paramref name="written"/>, its keys matched case-insensitively.</summary>
    public static InterceptConfig Read(IReadOnlyDictionary<string, string?> written)
    {
        var (config, unknown) = Fields.Read(written, new InterceptConfig());
        return config with { UnknownKeys = unknown };
    }
}
