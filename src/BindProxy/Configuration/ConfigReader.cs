using Microsoft.Extensions.Configuration;

namespace BindProxy.Configuration;

/// <summary>
/// Reads the <c>BindProxy</c> and <c>Admin</c> sections into <see cref="ProxyConfig"/> without
/// judging the values, and notes every key at every level that nothing reads.
/// </summary>
internal static class ConfigReader
{
    public const string SectionName = "BindProxy";

    /// <summary>The keys of the <c>BindProxy</c> section, and when an edit of each takes effect.</summary>
    internal static readonly (string Key, FieldReload Reload)[] ProxyFields =
        [("Routes", FieldReload.Live), ("DrainTimeout", FieldReload.Live), ("Engine", FieldReload.Restart)];

    /// <summary>The keys of the <c>BindProxy</c> section.</summary>
    internal static readonly string[] ProxyKeys = [.. ProxyFields.Select(f => f.Key)];

    /// <summary>The top-level sections the proxy reads.</summary>
    internal static readonly string[] Sections = [SectionName, AdminConfig.SectionName, "Serilog"];

    public static ProxyConfig Read(IConfiguration configuration)
    {
        var unknown = new List<UnknownKey>();
        foreach (var section in configuration.GetChildren())
        {
            if (!Sections.Contains(section.Key, StringComparer.OrdinalIgnoreCase))
            {
                unknown.Add(new UnknownKey(section.Key, Sections, TopLevel: true));
            }
        }

        var proxy = configuration.GetSection(SectionName);
        foreach (var key in proxy.GetChildren().Select(c => c.Key).Where(k => !ProxyKeys.Contains(k, StringComparer.OrdinalIgnoreCase)))
        {
            unknown.Add(new UnknownKey($"{SectionName}:{key}", ProxyKeys));
        }

        var routes = proxy.GetSection("Routes").GetChildren().Select(ReadRoute).ToList();
        return new ProxyConfig { Routes = routes, DrainTimeout = proxy["DrainTimeout"], Engine = proxy["Engine"], Admin = ReadAdmin(configuration), UnknownKeys = unknown };
    }

    /// <summary>
    /// The file's keys that take effect at the next restart, by full path (<c>BindProxy:Engine</c>,
    /// <c>Admin:Listen</c>: the admin endpoint is made once, at startup), as written (null when not set).
    /// </summary>
    public static IReadOnlyDictionary<string, string?> ReadRestartOnly(IConfiguration configuration) =>
        ProxyFields.Where(f => f.Reload == FieldReload.Restart).Select(f => $"{SectionName}:{f.Key}")
            .Append($"{AdminConfig.SectionName}:Listen")
            .ToDictionary(key => key, key => configuration[key], StringComparer.Ordinal);

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

    private static RouteConfig ReadRoute(IConfigurationSection section)
    {
        var misshapen = new List<(string Field, string Expected, string Found)>();
        var route = new RouteConfig { Name = section.Key };
        foreach (var field in RouteFields.All)
        {
            var child = section.GetSection(field.Name);
            object? value = field.Shape switch
            {
                FieldShape.List => ReadList(child, misshapen),
                FieldShape.Map => ReadMap(child, misshapen),
                _ => ReadText(child, misshapen),
            };
            route = field.With(route, value);
        }

        return route with
        {
            UnknownFields = [.. section.GetChildren().Select(c => c.Key).Where(k => RouteFields.Find(k) is null)],
            MisshapenFields = misshapen,
        };
    }

    private static string? ReadText(IConfigurationSection field, List<(string, string, string)> misshapen)
    {
        if (field.Value is null && field.GetChildren().Any())
        {
            misshapen.Add((field.Key, "a single value", "an object or array"));
        }

        return field.Value;
    }

    /// <summary>A field may be a string or a JSON array of strings; arrays read as a comma-separated list.</summary>
    private static string? ReadList(IConfigurationSection field, List<(string, string, string)> misshapen)
    {
        if (field.Value is { } value)
        {
            return value;
        }

        var children = field.GetChildren().ToList();
        if (children.Any(c => c.Value is null && c.GetChildren().Any()))
        {
            misshapen.Add((field.Key, "a value or an array of values", "an object or array"));
        }

        var items = children.Select(c => c.Value).Where(v => !string.IsNullOrWhiteSpace(v)).ToList();
        return items.Count == 0 ? null : string.Join(",", items);
    }

    private static Dictionary<string, string?>? ReadMap(IConfigurationSection field, List<(string, string, string)> misshapen)
    {
        if (!field.Exists())
        {
            return null;
        }

        if (field.Value is not null)
        {
            misshapen.Add((field.Key, "an object of names and values", $"the single value '{field.Value}'"));
        }

        var map = new Dictionary<string, string?>(StringComparer.Ordinal);
        foreach (var entry in field.GetChildren())
        {
            if (entry.Value is null && entry.GetChildren().Any())
            {
                misshapen.Add(($"{field.Key}:{entry.Key}", "a single value", "an object or array"));
            }

            map[entry.Key] = entry.Value;
        }

        return map;
    }
}
