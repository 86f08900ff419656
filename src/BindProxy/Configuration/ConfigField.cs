using System.Reflection;
using System.Security.Cryptography;
using System.Text;
using System.Text.RegularExpressions;

namespace BindProxy.Configuration;

/// <summary>One key of a section: a property marked <see cref="ConfigFieldAttribute"/>, with its definition.</summary>
internal sealed partial class ConfigField
{
    private static readonly MethodInfo MemberwiseCloneMethod = typeof(object).GetMethod(nameof(MemberwiseClone), BindingFlags.Instance | BindingFlags.NonPublic)!;

    private readonly PropertyInfo _property;
    private readonly ConfigFieldAttribute _definition;

    internal ConfigField(string section, PropertyInfo property, ConfigFieldAttribute definition)
    {
        _property = property;
        _definition = definition;
        Path = section.Length == 0 ? property.Name : $"{section}:{property.Name}";
        Values = [.. CodeSpan().Matches(definition.Forms).Select(m => m.Groups[1].Value)];
    }

    /// <summary>The key, as written in the file.</summary>
    public string Name => _property.Name;

    /// <summary>The key as messages name it: <c>Listen</c> in a route, <c>Intercept:Ports</c>, <c>BindProxy:Engine</c>, <c>Admin:Listen</c>.</summary>
    public string Path { get; }

    public FieldShape Shape => _definition.Shape;

    public FieldScope Scope => _definition.Scope;

    public FieldReload Reload => _definition.Reload;

    /// <inheritdoc cref="ConfigFieldAttribute.Secret"/>
    public bool IsSecret => _definition.Secret;

    /// <summary>The table of a section field's keys (<see cref="ConfigFieldAttribute.Keys"/>); null for other fields.</summary>
    public FieldTable? Keys => _definition.Keys?.GetProperty("Fields", BindingFlags.Public | BindingFlags.Static)?.GetValue(null) as FieldTable;

    /// <inheritdoc cref="ConfigFieldAttribute.Doc"/>
    public string Doc => _definition.Doc;

    /// <inheritdoc cref="ConfigFieldAttribute.Forms"/>
    public string Forms => _definition.Forms;

    /// <inheritdoc cref="ConfigFieldAttribute.Default"/>
    public string? Default => _definition.Default;

    /// <inheritdoc cref="ConfigFieldAttribute.Unset"/>
    public string? Unset => _definition.Unset;

    /// <summary>The values <see cref="Forms"/> shows (its code spans), in order.</summary>
    public IReadOnlyList<string> Values { get; }

    /// <summary>The value validation messages give as an example ("such as 00:00:10"): the first of <see cref="Forms"/>.</summary>
    public string Example => Values.Count > 0 ? Values[0] : throw new InvalidOperationException($"{Path} shows no value in its Forms");

    /// <summary>The protocol the field is limited to; null when every route may set it.</summary>
    public RouteProtocol? OnlyFor => Scope switch
    {
        FieldScope.KafkaOnly => RouteProtocol.Kafka,
        FieldScope.HttpOnly => RouteProtocol.Http,
        _ => null,
    };

    internal Type PropertyType => _property.PropertyType;

    /// <summary>The field's value as written, or null when it is not set.</summary>
    public object? Get(object config) => _property.GetValue(config);

    /// <summary>
    /// The value as one comparable text: what the reload diff shows and what tells a changed field
    /// from an unchanged one. A map is its entries sorted by name; a secret key's value shows as a
    /// short digest, so an edit of it is still told apart and the value never shown.
    /// </summary>
    public string? Text(object config) => Get(config) switch
    {
        null => null,
        string text => IsSecret ? Hidden(text) : text,
        IReadOnlyDictionary<string, string?> map => string.Join(", ", map.OrderBy(kv => kv.Key, StringComparer.Ordinal)
            .Select(kv => $"{kv.Key}={(kv.Value is { } value && Keys?.Find(kv.Key) is { IsSecret: true } ? Hidden(value) : kv.Value)}")),
        var other => throw new InvalidOperationException($"field {Path} has type {other.GetType().Name}, which the field table cannot compare"),
    };

    private static string Hidden(string value) => $"(hidden, #{Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(value)))[..8]})";

    /// <summary>A copy of <paramref name="config"/> with this field set to <paramref name="value"/>.</summary>
    public T With<T>(T config, object? value)
        where T : class
    {
        var copy = (T)MemberwiseCloneMethod.Invoke(config, null)!;
        _property.SetValue(copy, value);
        return copy;
    }

    public override string ToString() => Path;

    [GeneratedRegex("`([^`]+)`")]
    private static partial Regex CodeSpan();
}
