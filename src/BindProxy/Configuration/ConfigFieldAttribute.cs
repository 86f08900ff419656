namespace BindProxy.Configuration;

/// <summary>
/// The one definition of a setting. It marks a property of a section's record as a key of that
/// section: <see cref="RouteConfig"/> (a route), <see cref="ProxyConfig"/> (<c>BindProxy</c>),
/// <see cref="AdminConfig"/> (<c>Admin</c>), or a section within a route:
/// <see cref="InterceptConfig"/> (<c>Intercept</c>), <see cref="TlsConfig"/> (<c>Tls</c>),
/// <see cref="ListenTlsConfig"/> (<c>ListenTls</c>). The key's name is the property's name. Reading, unknown keys ("did you
/// mean"), protocol checks, change detection, the reload diff, restart-only keys, the examples
/// and defaults in validation messages and README's tables all come from these
/// (<see cref="FieldTable"/>): a new setting is a new property here, and nothing else.
/// </summary>
/// <param name="doc">What the setting does, in Markdown: README's "Meaning" column.</param>
[AttributeUsage(AttributeTargets.Property, AllowMultiple = false)]
internal sealed class ConfigFieldAttribute(string doc) : Attribute
{
    public string Doc { get; } = doc;

    /// <summary>
    /// How it may be written, in Markdown, with each value in backticks: README's "Forms" column.
    /// The first value is the example validation messages give, so it must be valid.
    /// </summary>
    public string Forms { get; set; } = "";

    /// <summary>
    /// The value that applies when the key is absent, written as a user would write it; the
    /// validator reads it exactly like a written value. Null when no value stands for absence.
    /// </summary>
    public string? Default { get; set; }

    /// <summary>What absence means when <see cref="Default"/> is null ("never", "no limit"); null: the key is required.</summary>
    public string? Unset { get; set; }

    public FieldShape Shape { get; set; } = FieldShape.Text;

    public FieldScope Scope { get; set; } = FieldScope.AnyProtocol;

    public FieldReload Reload { get; set; } = FieldReload.Live;

    /// <summary>
    /// A <see cref="FieldShape.Map"/> field whose keys are the fields of this record (its static
    /// <c>Fields</c> table): the reload diff then hides the values of its <see cref="Secret"/> keys.
    /// </summary>
    public Type? Keys { get; set; }

    /// <summary>A password: never shown, in the reload diff nor anywhere else; a change is still told.</summary>
    public bool Secret { get; set; }
}
