namespace BindProxy.Configuration;

/// <summary>Options that replace the file's routes with one route given on the command line.</summary>
internal sealed record QuickRoute(string? Listen, string? Upstream, string? Source, string? Protocol, string? ConnectTimeout, string? BrokerPorts = null, string? AdvertisedHost = null, string? Assign = null)
{
    public const string RouteName = "cli";

    public bool IsSet => Listen is not null || Upstream is not null || Source is not null;

    public RouteConfig ToRouteConfig() => new()
    {
        Name = RouteName,
        Listen = Listen,
        Upstream = Upstream,
        Source = Source,
        Protocol = Protocol,
        ConnectTimeout = ConnectTimeout,
        BrokerPorts = BrokerPorts,
        AdvertisedHost = AdvertisedHost,
        Assign = Assign,
    };
}
