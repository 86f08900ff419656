using System.Reflection;

namespace BindProxy.Configuration;

/// <summary>One field of a route's section: a <see cref="RouteConfig"/> property marked <see cref="RouteFieldAttribute"/>.</summary>
internal sealed class RouteField(PropertyInfo property, RouteFieldAttribute definition)
{
    public string Name => property.Name;

    public FieldShape Shape => definition.Shape;

    public FieldScope Scope => definition.Scope;

    public FieldReload Reload => definition.Reload;

    /// <summary>The protocol the field is limited to; null when every route may set it.</summary>
    public RouteProtocol? OnlyFor => Scope switch
    {
        FieldScope.KafkaOnly => RouteProtocol.Kafka,
        FieldScope.HttpOnly => RouteProtocol.Http,
        _ => null,
    };

    /// <summary>The field's value as written, or null when it is not set.</summary>
    public object? Get(RouteConfig route) => property.GetValue(route);

    /// <summary>
    /// The value as one comparable text: what the reload diff shows and what tells a changed field
    /// from an unchanged one. A map is its entries sorted by name.
    /// </summary>
    public string? Text(RouteConfig route) => Get(route) switch
    {
        null => null,
        string text => text,
        IReadOnlyDictionary<string, string?> map => string.Join(", ", map.OrderBy(kv => kv.Key, StringComparer.Ordinal).Select(kv => $"{kv.Key}={kv.Value}")),
        var other => throw new InvalidOperationException($"route field {Name} has type {other.GetType().Name}, which the field table cannot compare"),
    };

    /// <summary>A copy of <paramref name="route"/> with this field set to <paramref name="value"/>.</summary>
    public RouteConfig With(RouteConfig route, object? value)
    {
        var copy = route with { };
        property.SetValue(copy, value);
        return copy;
    }

    public override string ToString() => Name;
}
