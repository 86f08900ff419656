namespace BindProxy.Configuration;

/// <summary>
/// Marks a property of <see cref="RouteConfig"/> as a field of a route's section. The marked
/// properties are the one list of route fields: reading, unknown-key detection, protocol checks,
/// change detection and the reload diff all come from them (<see cref="RouteFields"/>).
/// </summary>
[AttributeUsage(AttributeTargets.Property, AllowMultiple = false)]
internal sealed class RouteFieldAttribute : Attribute
{
    public FieldShape Shape { get; set; } = FieldShape.Text;

    public FieldScope Scope { get; set; } = FieldScope.AnyProtocol;

    public FieldReload Reload { get; set; } = FieldReload.Live;
}
