namespace BindProxy.Faults;

/// <summary>
/// One toxic on one route, as toxiproxy shows it: a name unique on its route, a type, the
/// direction it works on, the share of connections it applies to (<see cref="Toxicity"/>) and
/// its attributes (every one of its type's, defaults filled in). Immutable; an update makes a new one.
/// </summary>
internal sealed record Toxic(string Name, ToxicKind Kind, ToxicStream Stream, double Toxicity, IReadOnlyDictionary<string, long> Attributes)
{
    /// <summary>Text attributes given (a Kafka toxic's <c>api</c>).</summary>
    public IReadOnlyDictionary<string, string> Texts { get; init; } = new Dictionary<string, string>();

    public string? Text(string attribute) => Texts.TryGetValue(attribute, out var value) ? value : null;

    /// <summary>The connections it is aimed at; null for every one.</summary>
    public ToxicMatch? Match { get; init; }

    /// <summary>Where it came from: <see cref="FromApi"/> or <see cref="FromFile"/> (a route's <c>Faults</c>), as the API lists it.</summary>
    public string Origin { get; init; } = FromApi;

    public const string FromApi = "api";

    public const string FromFile = "file";

    public bool IsFromFile => Origin == FromFile;

    public string Type => Kind.Name;

    public string StreamName => Stream == ToxicStream.Upstream ? "upstream" : "downstream";

    public long this[string attribute] => Attributes.TryGetValue(attribute, out long value) ? value : Kind.Default(attribute);

    /// <summary>Attributes as one line for logs: <c>latency=100 jitter=0</c>.</summary>
    public string Describe() =>
        $"{Type} {StreamName} toxicity {Toxicity:0.###}: " + string.Join(' ', Kind.Attributes.Select(a => $"{a.Attribute}={this[a.Attribute]}").Concat(Texts.Select(t => $"{t.Key}={t.Value}")))
        + (Match is { } match ? $"; only {match}" : "");
}
