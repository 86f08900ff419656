using Microsoft.Extensions.Configuration;

namespace BindProxy.Configuration;

/// <summary>Reads the <c>BindProxy</c> section into <see cref="ProxyConfig"/> without judging it.</summary>
internal static class ConfigReader
{
    public const string SectionName = "BindProxy";

    internal static readonly string[] RouteFields = ["Listen", "Upstream", "Source", "Protocol", "ConnectTimeout", "IdleTimeout", "MaxConnections", "MaxConnectionsPerClient", "Assign", "ClientIds", "WhenExhausted", "AssignmentIdleTimeout", "BrokerPorts", "AdvertisedHost", "MaxFrameSize", "FrameTimeout", "AllowedBrokers", "XForwarded", "RequestTimeout"];

    public static ProxyConfig Read(IConfiguration configuration)
    {
        var routes = configuration.GetSection(SectionName).GetSection("Routes").GetChildren()
            .Select(ReadRoute)
            .ToList();
        return new ProxyConfig { Routes = routes, DrainTimeout = configuration.GetSection(SectionName)["DrainTimeout"], Admin = ReadAdmin(configuration) };
    }

    /// <summary>The top-level <c>Admin</c> section, or null when there is none.</summary>
    public static AdminConfig? ReadAdmin(IConfiguration configuration)
    {
        var section = configuration.GetSection(AdminConfig.SectionName);
        if (!section.Exists())
        {
            return null;
        }

        return new AdminConfig
        {
            Listen = section["Listen"],
            AllowNonLoopback = section["AllowNonLoopback"],
            UnknownFields = [.. section.GetChildren().Select(c => c.Key)
                .Where(k => !AdminConfig.Fields.Contains(k, StringComparer.OrdinalIgnoreCase))],
        };
    }

    private static RouteConfig ReadRoute(IConfigurationSection section) => new()
    {
        Name = section.Key,
        Listen = ReadList(section, "Listen"),
        Upstream = ReadList(section, "Upstream"),
        Source = ReadList(section, "Source"),
        Protocol = section["Protocol"],
        ConnectTimeout = section["ConnectTimeout"],
        MaxConnections = section["MaxConnections"],
        MaxConnectionsPerClient = section["MaxConnectionsPerClient"],
        IdleTimeout = section["IdleTimeout"],
        FrameTimeout = section["FrameTimeout"],
        Assign = section["Assign"],
        ClientIds = section.GetSection("ClientIds").Exists()
            ? section.GetSection("ClientIds").GetChildren().ToDictionary(c => c.Key, c => c.Value, StringComparer.Ordinal)
            : null,
        WhenExhausted = section["WhenExhausted"],
        AssignmentIdleTimeout = section["AssignmentIdleTimeout"],
        BrokerPorts = section["BrokerPorts"],
        AdvertisedHost = section["AdvertisedHost"],
        MaxFrameSize = section["MaxFrameSize"],
        AllowedBrokers = ReadList(section, "AllowedBrokers"),
        XForwarded = section["XForwarded"],
        RequestTimeout = section["RequestTimeout"],
        UnknownFields = [.. section.GetChildren().Select(c => c.Key)
            .Where(k => !RouteFields.Contains(k, StringComparer.OrdinalIgnoreCase))],
    };

    /// <summary>A field may be a string or a JSON array of strings; arrays read as a comma-separated list.</summary>
    private static string? ReadList(IConfigurationSection route, string key)
    {
        var field = route.GetSection(key);
        if (field.Value is { } value)
        {
            return value;
        }

        var items = field.GetChildren().Select(c => c.Value).Where(v => !string.IsNullOrWhiteSpace(v)).ToList();
        return items.Count == 0 ? null : string.Join(",", items);
    }
}
