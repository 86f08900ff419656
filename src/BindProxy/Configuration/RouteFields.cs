using System.Reflection;

namespace BindProxy.Configuration;

/// <summary>
/// The table of route fields, made once from <see cref="RouteConfig"/>'s marked properties in
/// declaration order.
/// </summary>
internal static class RouteFields
{
    public static readonly IReadOnlyList<RouteField> All = Discover();

    public static IReadOnlyList<string> Names { get; } = [.. All.Select(f => f.Name)];

    /// <summary>The field named <paramref name="key"/>; configuration keys are case-insensitive.</summary>
    public static RouteField? Find(string key) => All.FirstOrDefault(f => string.Equals(f.Name, key, StringComparison.OrdinalIgnoreCase));

    /// <summary>Every field whose value differs between <paramref name="before"/> and <paramref name="after"/>.</summary>
    public static IReadOnlyList<(RouteField Field, string? Before, string? After)> Differences(RouteConfig before, RouteConfig after) =>
        [.. All.Select(f => (Field: f, Before: f.Text(before), After: f.Text(after))).Where(d => d.Before != d.After)];

    private static RouteField[] Discover()
    {
        var empty = new RouteConfig { Name = "" };
        var fields = new List<RouteField>();
        foreach (var property in typeof(RouteConfig).GetProperties(BindingFlags.Public | BindingFlags.Instance).OrderBy(p => p.MetadataToken))
        {
            if (property.GetCustomAttribute<RouteFieldAttribute>() is not { } definition)
            {
                continue;
            }

            // Reading and comparing know two kinds of value; anything else is a mistake in RouteConfig.
            var wanted = definition.Shape == FieldShape.Map ? typeof(IReadOnlyDictionary<string, string?>) : typeof(string);
            var field = new RouteField(property, definition);
            if (property.PropertyType != wanted || field.Get(empty) is not null)
            {
                throw new InvalidOperationException($"RouteConfig.{property.Name}: a {definition.Shape} field must be a {wanted.Name} that is null when not set");
            }

            fields.Add(field);
        }

        return [.. fields];
    }
}
