namespace BindProxy.Configuration;

/// <summary>How a field is written in the configuration.</summary>
internal enum FieldShape
{
    /// <summary>One value.</summary>
    Text,

    /// <summary>One value, or a JSON array of values read as a comma-separated list.</summary>
    List,

    /// <summary>A section of names and values (<c>ClientIds</c>, <c>Intercept</c>).</summary>
    Map,

    /// <summary>A section of named sections, each read by a table of its own (<c>Routes</c>).</summary>
    Sections,

    /// <summary>A JSON array of objects, kept as one JSON text for a reader of its own (<c>Faults</c>: toxics).</summary>
    Objects,
}
