namespace BindProxy.Configuration;

/// <summary>The whole proxy configuration as written.</summary>
internal sealed record ProxyConfig
{
    public IReadOnlyList<RouteConfig> Routes { get; init; } = [];

    /// <summary>How long connections may take to finish at shutdown or when their route is removed.</summary>
    public string? DrainTimeout { get; init; }

    /// <summary>The forwarding engine of plain Tcp routes: auto (default), relay or pipes. Read at startup.</summary>
    public string? Engine { get; init; }

    /// <summary>The admin endpoint; null when the file has no <c>Admin</c> section.</summary>
    public AdminConfig? Admin { get; init; }

    /// <summary>
    /// Keys above the route level that nothing reads, by path (<c>BindProxy:Rotues</c>, <c>Admn</c>),
    /// with the names that were expected where each was found.
    /// </summary>
    public IReadOnlyList<UnknownKey> UnknownKeys { get; init; } = [];
}
