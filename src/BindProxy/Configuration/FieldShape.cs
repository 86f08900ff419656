namespace BindProxy.Configuration;

/// <summary>How a route field is written in the configuration.</summary>
internal enum FieldShape
{
    /// <summary>One value.</summary>
    Text,

    /// <summary>One value, or a JSON array of values read as a comma-separated list.</summary>
    List,

    /// <summary>A section of names and values (<c>ClientIds</c>, <c>Intercept</c>).</summary>
    Map,
}
