using System.Globalization;
using System.Text.Json;

namespace BindProxy.Faults;

/// <summary>
/// Toxics to and from toxiproxy's JSON: <c>{"name","type","stream","toxicity","attributes"}</c>.
/// Reading never throws on the body's content: a problem comes back as the message toxiproxy's
/// 400 would carry.
/// </summary>
internal static class ToxicJson
{
    /// <summary>Reads a new toxic from <paramref name="body"/>; null and a message when it is not one.</summary>
    /// <param name="textCheck">Checks a text attribute's value (an <c>api</c> name the proxy knows); null, or why not.</param>
    public static Toxic? Create(JsonElement body, out string? problem, Func<string, string, string?>? textCheck = null)
    {
        problem = null;
        if (body.ValueKind != JsonValueKind.Object)
        {
            problem = "bad request body: expected a JSON object";
            return null;
        }

        var typeText = body.TryGetProperty("type", out var type) && type.ValueKind == JsonValueKind.String ? type.GetString() : null;
        if (typeText is null || !ToxicKind.All.TryGetValue(typeText, out var kind))
        {
            problem = $"invalid toxic type: '{typeText}'; expected one of {string.Join(", ", ToxicKind.All.Keys)}";
            return null;
        }

        var stream = ToxicStream.Downstream;
        if (body.TryGetProperty("stream", out var streamValue) && streamValue.ValueKind != JsonValueKind.Null)
        {
            switch (streamValue.ValueKind == JsonValueKind.String ? streamValue.GetString() : null)
            {
                case "upstream":
                    stream = ToxicStream.Upstream;
                    break;
                case "downstream" or "":
                    break;
                default:
                    problem = "stream was invalid, can be either upstream or downstream";
                    return null;
            }
        }

        double toxicity = 1.0;
        if (!ReadToxicity(body, ref toxicity, ref problem))
        {
            return null;
        }

        string name = body.TryGetProperty("name", out var nameValue) && nameValue.ValueKind == JsonValueKind.String && nameValue.GetString() is { Length: > 0 } given
            ? given
            : $"{kind.Name}_{(stream == ToxicStream.Upstream ? "upstream" : "downstream")}";
        if (name.Contains('/', StringComparison.Ordinal))
        {
            problem = $"toxic name '{name}' contains '/'";
            return null;
        }

        var attributes = kind.Attributes.ToDictionary(a => a.Attribute, a => a.Default, StringComparer.Ordinal);
        var texts = new Dictionary<string, string>(StringComparer.Ordinal);
        if (!ReadAttributes(body, kind, attributes, texts, textCheck, ref problem) || !ReadMatch(body, null, out var match, ref problem) || !CheckTogether(kind, attributes, texts, ref problem))
        {
            return null;
        }

        return new Toxic(name, kind, stream, toxicity, attributes) { Match = match, Texts = texts };
    }

    /// <summary>Applies an update body to <paramref name="toxic"/>: a new toxicity, attributes merged over the present ones.</summary>
    public static Toxic? Update(Toxic toxic, JsonElement body, out string? problem, Func<string, string, string?>? textCheck = null)
    {
        problem = null;
        if (body.ValueKind != JsonValueKind.Object)
        {
            problem = "bad request body: expected a JSON object";
            return null;
        }

        if (body.TryGetProperty("type", out var type) && type.ValueKind == JsonValueKind.String && type.GetString() != toxic.Type)
        {
            problem = $"toxic {toxic.Name} is a {toxic.Type}; its type cannot change";
            return null;
        }

        double toxicity = toxic.Toxicity;
        var attributes = new Dictionary<string, long>(toxic.Attributes, StringComparer.Ordinal);
        var texts = new Dictionary<string, string>(toxic.Texts, StringComparer.Ordinal);
        return ReadToxicity(body, ref toxicity, ref problem) && ReadAttributes(body, toxic.Kind, attributes, texts, textCheck, ref problem) && ReadMatch(body, toxic.Match, out var match, ref problem)
            && CheckTogether(toxic.Kind, attributes, texts, ref problem)
            ? toxic with { Toxicity = toxicity, Attributes = attributes, Match = match, Texts = texts }
            : null;
    }

    /// <summary>A <c>match</c> given replaces <paramref name="present"/>; <c>null</c> removes it; absent keeps it.</summary>
    private static bool ReadMatch(JsonElement body, ToxicMatch? present, out ToxicMatch? match, ref string? problem)
    {
        match = present;
        if (!body.TryGetProperty("match", out var given))
        {
            return true;
        }

        if (given.ValueKind == JsonValueKind.Null)
        {
            match = null;
            return true;
        }

        match = ToxicMatch.Read(given, out problem);
        return match is not null;
    }

    private static bool CheckTogether(ToxicKind kind, Dictionary<string, long> attributes, Dictionary<string, string> texts, ref string? problem)
    {
        problem = kind.Check?.Invoke(attributes, texts);
        return problem is null;
    }

    private static bool ReadToxicity(JsonElement body, ref double toxicity, ref string? problem)
    {
        if (!body.TryGetProperty("toxicity", out var value) || value.ValueKind == JsonValueKind.Null)
        {
            return true;
        }

        if (value.ValueKind != JsonValueKind.Number || !value.TryGetDouble(out double read) || read is < 0 or > 1 || double.IsNaN(read))
        {
            problem = $"toxicity must be a number from 0 to 1; got {value.GetRawText()}";
            return false;
        }

        toxicity = read;
        return true;
    }

    private static bool ReadAttributes(JsonElement body, ToxicKind kind, Dictionary<string, long> attributes, Dictionary<string, string> texts,
        Func<string, string, string?>? textCheck, ref string? problem)
    {
        if (!body.TryGetProperty("attributes", out var given) || given.ValueKind == JsonValueKind.Null)
        {
            return true;
        }

        if (given.ValueKind != JsonValueKind.Object)
        {
            problem = "attributes must be a JSON object";
            return false;
        }

        foreach (var attribute in given.EnumerateObject())
        {
            if (kind.TextAttributes.Contains(attribute.Name) && attribute.Value.ValueKind == JsonValueKind.Null)
            {
                texts.Remove(attribute.Name); // an update unsets it
                continue;
            }

            if (kind.TextAttributes.Contains(attribute.Name))
            {
                var text = attribute.Value.ValueKind switch
                {
                    JsonValueKind.String => attribute.Value.GetString(),
                    JsonValueKind.Number => attribute.Value.GetRawText(),
                    JsonValueKind.True => "true",
                    JsonValueKind.False => "false",
                    _ => null,
                };
                if (string.IsNullOrEmpty(text) || textCheck?.Invoke(attribute.Name, text) is { } bad)
                {
                    problem = $"{kind.Name} attribute {attribute.Name}: {(string.IsNullOrEmpty(text) ? $"expected a name, a number or true/false; got {attribute.Value.GetRawText()}" : textCheck!(attribute.Name, text))}";
                    return false;
                }

                texts[attribute.Name] = text;
                continue;
            }

            if (!attributes.ContainsKey(attribute.Name))
            {
                problem = $"{kind.Name} has no attribute '{attribute.Name}'; expected {string.Join(", ", kind.Attributes.Select(a => a.Attribute).Concat(kind.TextAttributes))}";
                return false;
            }

            if (attribute.Value.ValueKind != JsonValueKind.Number || !attribute.Value.TryGetInt64(out long value) || value < 0)
            {
                problem = $"{kind.Name} attribute {attribute.Name} must be a whole number of 0 or more; got {attribute.Value.GetRawText()}";
                return false;
            }

            attributes[attribute.Name] = value;
        }

        return true;
    }

    public static void Write(Utf8JsonWriter writer, Toxic toxic)
    {
        writer.WriteStartObject();
        writer.WriteStartObject("attributes");
        foreach (var (attribute, _) in toxic.Kind.Attributes)
        {
            writer.WriteNumber(attribute, toxic[attribute]);
        }

        foreach (var (attribute, text) in toxic.Texts)
        {
            // Back as they were given: a number, true or false, else text.
            if (text is "true" or "false")
            {
                writer.WriteBoolean(attribute, text == "true");
            }
            else if (long.TryParse(text, NumberStyles.Integer, CultureInfo.InvariantCulture, out long whole))
            {
                writer.WriteNumber(attribute, whole);
            }
            else if (double.TryParse(text, NumberStyles.Float, CultureInfo.InvariantCulture, out double fraction) && double.IsFinite(fraction))
            {
                writer.WriteNumber(attribute, fraction);
            }
            else
            {
                writer.WriteString(attribute, text);
            }
        }

        writer.WriteEndObject();
        writer.WriteString("name", toxic.Name);
        writer.WriteString("type", toxic.Type);
        writer.WriteString("stream", toxic.StreamName);
        writer.WriteNumber("toxicity", toxic.Toxicity);
        toxic.Match?.Write(writer);
        writer.WriteString("origin", toxic.Origin);
        writer.WriteEndObject();
    }
}
