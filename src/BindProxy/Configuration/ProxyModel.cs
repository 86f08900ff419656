namespace BindProxy.Configuration;

/// <summary>All routes of one validated configuration; immutable, swapped whole.</summary>
internal sealed class ProxyModel
{
    public ProxyModel(IReadOnlyList<RouteModel> routes, TimeSpan? drainTimeout = null)
    {
        Routes = routes;
        ByName = routes.ToDictionary(r => r.Name, StringComparer.Ordinal);
        DrainTimeout = drainTimeout ?? ProxyDefaults.DrainTimeout;
    }

    /// <summary>How long connections may take to finish at shutdown or when their route is removed.</summary>
    public TimeSpan DrainTimeout { get; }

    /// <summary>How long a connection whose sides have both ended may wait with no progress for a peer to take the rest.</summary>
    public TimeSpan FlushTimeout { get; init; } = ProxyDefaults.FlushTimeout;

    /// <summary>How long bytes may wait in one direction with no progress, though the other side could take them, before the watchdog says so.</summary>
    public TimeSpan StallTimeout { get; init; } = ProxyDefaults.StallTimeout;

    public IReadOnlyList<RouteModel> Routes { get; }

    public IReadOnlyDictionary<string, RouteModel> ByName { get; }

    /// <summary>The admin endpoint; null when it is off. Read once at startup.</summary>
    public AdminModel? Admin { get; init; }

    /// <summary>The fault API's listener; null when it is off. Read once at startup.</summary>
    public FaultsModel? Faults { get; init; }

    /// <summary>Rolling capture files; null when they are off. Reloadable.</summary>
    public CaptureModel? Capture { get; init; }

    /// <summary>The engine that forwards plain Tcp routes, resolved for this platform (relay or pipes, never auto). Read once at startup.</summary>
    public EngineSetting Engine { get; init; } = EngineSettings.Resolve(EngineSetting.Auto, out _)!.Value;
}
