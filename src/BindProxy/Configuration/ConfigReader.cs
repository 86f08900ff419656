using Microsoft.Extensions.Configuration;

namespace BindProxy.Configuration;

/// <summary>
/// Reads the <c>BindProxy</c> and <c>Admin</c> sections into <see cref="ProxyConfig"/> without
/// judging the values, and notes every key at every level that nothing reads. The keys of each
/// section are its record's field table (<see cref="FieldTable"/>).
/// </summary>
internal static class ConfigReader
{
    /// <summary>The keys of the <c>BindProxy</c> section.</summary>
    internal static IReadOnlyList<string> ProxyKeys => ProxyConfig.Fields.Names;

    /// <summary>The top-level sections the proxy reads.</summary>
    internal static readonly string[] Sections = [ProxyConfig.SectionName, AdminConfig.SectionName, FaultsConfig.SectionName, CaptureConfig.SectionName, "Serilog"];

    /// <summary>The sections whose keys may wait for a restart, in the order the reload names them.</summary>
    private static readonly FieldTable[] TopLevelTables = [ProxyConfig.Fields, AdminConfig.Fields, FaultsConfig.Fields];

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

        var proxy = configuration.GetSection(ProxyConfig.SectionName);
        foreach (var key in proxy.GetChildren().Select(c => c.Key).Where(k => ProxyConfig.Fields.Find(k) is null))
        {
            unknown.Add(new UnknownKey($"{ProxyConfig.SectionName}:{key}", ProxyKeys));
        }

        // A value written as a section reads as not set here, as it always has.
        var config = ReadFields(proxy, ProxyConfig.Fields, new ProxyConfig(), misshapen: []);
        return config with
        {
            Routes = [.. proxy.GetSection(nameof(ProxyConfig.Routes)).GetChildren().Select(ReadRoute)],
            Admin = ReadAdmin(configuration),
            Faults = ReadFaults(configuration),
            Capture = ReadCapture(configuration),
            UnknownKeys = unknown,
        };
    }

    /// <summary>
    /// The file's keys that take effect at the next restart (<c>BindProxy:Engine</c>, the
    /// <c>Admin</c> keys: the admin endpoint is made once, at startup), by full path, as written
    /// (null when not set).
    /// </summary>
    public static IReadOnlyDictionary<string, string?> ReadRestartOnly(IConfiguration configuration) =>
        TopLevelTables.SelectMany(table => table.All).Where(f => f.Reload == FieldReload.Restart)
            .ToDictionary(f => f.Path, f => configuration[f.Path], StringComparer.Ordinal);

    /// <summary>The top-level <c>Admin</c> section, or null when there is none.</summary>
    public static AdminConfig? ReadAdmin(IConfiguration configuration)
    {
        var section = configuration.GetSection(AdminConfig.SectionName);
        if (!section.Exists())
        {
            return null;
        }

        return ReadFields(section, AdminConfig.Fields, new AdminConfig(), misshapen: []) with
        {
            UnknownFields = [.. section.GetChildren().Select(c => c.Key).Where(k => AdminConfig.Fields.Find(k) is null)],
        };
    }

    /// <summary>The top-level <c>Faults</c> section, or null when there is none.</summary>
    public static FaultsConfig? ReadFaults(IConfiguration configuration)
    {
        var section = configuration.GetSection(FaultsConfig.SectionName);
        if (!section.Exists())
        {
            return null;
        }

        return ReadFields(section, FaultsConfig.Fields, new FaultsConfig(), misshapen: []) with
        {
            UnknownFields = [.. section.GetChildren().Select(c => c.Key).Where(k => FaultsConfig.Fields.Find(k) is null)],
        };
    }

    /// <summary>The top-level <c>Capture</c> section, or null when there is none.</summary>
    public static CaptureConfig? ReadCapture(IConfiguration configuration)
    {
        var section = configuration.GetSection(CaptureConfig.SectionName);
        if (!section.Exists())
        {
            return null;
        }

        return ReadFields(section, CaptureConfig.Fields, new CaptureConfig(), misshapen: []) with
        {
            UnknownFields = [.. section.GetChildren().Select(c => c.Key).Where(k => CaptureConfig.Fields.Find(k) is null)],
        };
    }

    /// <summary>Every field of <paramref name="table"/> but sections of sections, read from <paramref name="section"/> into <paramref name="config"/>.</summary>
    private static T ReadFields<T>(IConfigurationSection section, FieldTable table, T config, List<(string, string, string)> misshapen)
        where T : class
    {
        foreach (var field in table.All.Where(f => f.Shape != FieldShape.Sections))
        {
            var child = section.GetSection(field.Name);
            object? value = field.Shape switch
            {
                FieldShape.List => ReadList(child, misshapen),
                FieldShape.Map => ReadMap(child, misshapen),
                FieldShape.Objects => JsonSection.ReadArray(child, misshapen),
                _ => ReadText(child, misshapen),
            };
            config = field.With(config, value);
        }

        return config;
    }

    private static RouteConfig ReadRoute(IConfigurationSection section)
    {
        var misshapen = new List<(string Field, string Expected, string Found)>();
        var route = ReadFields(section, RouteConfig.Fields, new RouteConfig { Name = section.Key }, misshapen);
        return route with
        {
            UnknownFields = [.. section.GetChildren().Select(c => c.Key).Where(k => RouteConfig.Fields.Find(k) is null)],
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
