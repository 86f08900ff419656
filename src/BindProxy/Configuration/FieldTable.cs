using System.Reflection;

namespace BindProxy.Configuration;

/// <summary>
/// The keys of one section, made once from its record's properties marked
/// <see cref="ConfigFieldAttribute"/>, in declaration order.
/// </summary>
internal sealed class FieldTable
{
    private FieldTable(string section, IReadOnlyList<ConfigField> fields)
    {
        Section = section;
        All = fields;
        Names = [.. fields.Select(f => f.Name)];
    }

    /// <summary>The section's path as messages name it (<c>BindProxy</c>, <c>Admin</c>, <c>Intercept</c>; empty for a route).</summary>
    public string Section { get; }

    public IReadOnlyList<ConfigField> All { get; }

    public IReadOnlyList<string> Names { get; }

    /// <summary>The field named exactly <paramref name="name"/> (a <c>nameof</c>); a name that is not a field is a mistake in the code.</summary>
    public ConfigField this[string name] => All.FirstOrDefault(f => f.Name == name)
        ?? throw new KeyNotFoundException($"{name} is not a field of {(Section.Length == 0 ? "a route" : Section)}");

    /// <summary>The field named <paramref name="key"/>; configuration keys are case-insensitive.</summary>
    public ConfigField? Find(string key) => All.FirstOrDefault(f => string.Equals(f.Name, key, StringComparison.OrdinalIgnoreCase));

    /// <summary>Every field whose value differs between <paramref name="before"/> and <paramref name="after"/>.</summary>
    public IReadOnlyList<(ConfigField Field, string? Before, string? After)> Differences(object before, object after) =>
        [.. All.Select(f => (Field: f, Before: f.Text(before), After: f.Text(after))).Where(d => d.Before != d.After)];

    /// <summary>
    /// A section written within a route (<c>Intercept</c>, <c>Tls</c>, <c>ListenTls</c>), read into
    /// <paramref name="empty"/>: its keys matched case-insensitively, and the keys no field reads
    /// (typos) in the order written.
    /// </summary>
    public (T Config, IReadOnlyList<string> UnknownKeys) Read<T>(IReadOnlyDictionary<string, string?> written, T empty)
        where T : class
    {
        var config = empty;
        foreach (var field in All)
        {
            config = field.With(config, written.FirstOrDefault(kv => string.Equals(kv.Key, field.Name, StringComparison.OrdinalIgnoreCase)).Value);
        }

        return (config, [.. written.Keys.Where(k => Find(k) is null)]);
    }

    /// <summary>The table of <typeparamref name="T"/>'s marked properties; <paramref name="section"/> prefixes their paths.</summary>
    public static FieldTable Of<T>(string section)
        where T : class
    {
        var empty = Activator.CreateInstance<T>();
        var fields = new List<ConfigField>();
        foreach (var property in typeof(T).GetProperties(BindingFlags.Public | BindingFlags.Instance).OrderBy(p => p.MetadataToken))
        {
            if (property.GetCustomAttribute<ConfigFieldAttribute>() is not { } definition)
            {
                continue;
            }

            var field = new ConfigField(section, property, definition);
            fields.Add(field);
            if (definition.Shape == FieldShape.Sections)
            {
                continue;
            }

            // Reading and comparing know two kinds of value; anything else is a mistake in the record.
            var wanted = definition.Shape == FieldShape.Map ? typeof(IReadOnlyDictionary<string, string?>) : typeof(string);
            if (property.PropertyType != wanted || field.Get(empty) is not null)
            {
                throw new InvalidOperationException($"{typeof(T).Name}.{property.Name}: a {definition.Shape} field must be a {wanted.Name} that is null when not set");
            }

            if (definition.Default is not null && definition.Unset is not null)
            {
                throw new InvalidOperationException($"{typeof(T).Name}.{property.Name}: a field has a Default value or says what being Unset means, not both");
            }
        }

        return new FieldTable(section, fields);
    }
}
