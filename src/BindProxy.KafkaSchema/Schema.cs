namespace BindProxy.KafkaSchema;

/// <summary>A version range of a message, a field's presence, nullability or tag: "3+", "0-2", "5", or none.</summary>
internal readonly record struct Versions(short Min, short Max)
{
    public const short Open = short.MaxValue;

    public static readonly Versions None = new(1, 0);

    public bool IsNone => Min > Max;

    public bool Contains(short version) => version >= Min && version <= Max;

    public Versions Intersect(Versions other) =>
        IsNone || other.IsNone ? None : new Versions(Math.Max(Min, other.Min), Math.Min(Max, other.Max)) is var v && v.Min <= v.Max ? v : None;

    /// <summary>Parses Kafka's notation: "none", "N", "N+", "N-M".</summary>
    public static Versions Parse(string text)
    {
        text = text.Trim();
        if (text.Length == 0 || text == "none")
        {
            return None;
        }

        if (text.EndsWith('+'))
        {
            return new Versions(short.Parse(text[..^1], System.Globalization.CultureInfo.InvariantCulture), Open);
        }

        var dash = text.IndexOf('-', StringComparison.Ordinal);
        return dash < 0
            ? new Versions(Parse16(text), Parse16(text))
            : new Versions(Parse16(text[..dash]), Parse16(text[(dash + 1)..]));

        static short Parse16(string s) => short.Parse(s, System.Globalization.CultureInfo.InvariantCulture);
    }

    public override string ToString() => IsNone ? "none" : Max == Open ? $"{Min}+" : Min == Max ? $"{Min}" : $"{Min}-{Max}";
}

/// <summary>One field: its wire type ("int32", "string", "[]int32", "[]Broker", "Broker"), and when it is present, nullable or tagged.</summary>
internal sealed record FieldDef(
    string Name,
    string Type,
    Versions Versions,
    Versions NullableVersions,
    int? Tag,
    Versions TaggedVersions,
    Versions? FlexibleVersions,
    string? Default,
    IReadOnlyList<FieldDef> Fields)
{
    public bool IsArray => Type.StartsWith("[]", StringComparison.Ordinal);

    /// <summary>The element type of an array, or the type itself.</summary>
    public string ElementType => IsArray ? Type[2..] : Type;

    public bool IsStruct => char.IsUpper(ElementType[0]);

    public bool IsTagged => Tag is not null;
}

/// <summary>A named struct shared by several fields of one message ("commonStructs").</summary>
internal sealed record StructDef(string Name, Versions Versions, IReadOnlyList<FieldDef> Fields);

/// <summary>A request, a response or a header, with its fields and shared structs.</summary>
internal sealed record MessageDef(
    string Name,
    string Kind,
    short? ApiKey,
    Versions ValidVersions,
    Versions FlexibleVersions,
    bool LatestVersionUnstable,
    IReadOnlyList<FieldDef> Fields,
    IReadOnlyList<StructDef> CommonStructs);

/// <summary>An error code of the protocol: number, name, whether clients retry it, and its text.</summary>
internal sealed record ErrorDef(short Code, string Name, bool Retriable, string Message);

/// <summary>Everything the generator needs, as imported from one Kafka checkout.</summary>
internal sealed record ProtocolSchema(string Source, IReadOnlyList<MessageDef> Messages, IReadOnlyList<ErrorDef> Errors);
