namespace BindProxy.Configuration;

/// <summary>What an Http route adds to a Tcp route.</summary>
internal sealed record HttpRouteSettings
{
    public bool XForwarded { get; init; } = true;

    public TimeSpan RequestTimeout { get; init; } = ProxyDefaults.RequestTimeout;
}
