using System.Globalization;
using System.Text.Json;
using BindProxy.Configuration;

namespace BindProxy.Faults;

/// <summary>
/// Checks a route's <c>Faults</c> from the configuration file with <see cref="ToxicJson"/>, the
/// fault API's one definition of a toxic, so the file and the API accept the same toxics with the
/// same messages. Where the API stops at a toxic's first problem, the file's reader wants every
/// problem with its place: each part of a toxic (its <c>type</c> with one other key, one attribute,
/// one part of its <c>match</c>) is read on its own, then the whole toxic.
/// </summary>
/// <param name="textCheck">Checks a text attribute's value, as the fault API does (a Kafka toxic's <c>api</c>).</param>
internal sealed class ToxicCheck(Func<string, string, string?>? textCheck) : IToxicCheck
{
    /// <summary>The keys of a toxic in toxiproxy's shape, with BindProxy's <c>match</c>.</summary>
    public static readonly IReadOnlyList<string> Keys = ["name", "type", "stream", "toxicity", "attributes", "match"];

    public Func<string, string, string?>? TextCheck => textCheck;

    public IReadOnlyList<(string At, string Problem)> Check(JsonElement toxics)
    {
        var problems = new List<(string, string)>();
        var names = new Dictionary<string, int>(StringComparer.Ordinal);
        int index = 0;
        foreach (var body in toxics.EnumerateArray())
        {
            var at = index.ToString(CultureInfo.InvariantCulture);
            if (Read(body, (place, problem) => problems.Add((place.Length == 0 ? at : $"{at}:{place}", problem))) is { } toxic)
            {
                if (names.TryGetValue(toxic.Name, out int first))
                {
                    // The API's 409 for a name taken, with the toxic that took it.
                    problems.Add(($"{at}:name", $"toxic already exists: {toxic.Name} is also toxic {first}'s name (a name defaults to TYPE_STREAM)"));
                }
                else
                {
                    names[toxic.Name] = index;
                }
            }

            index++;
        }

        return problems;
    }

    /// <summary>The toxic <paramref name="body"/> describes, or null after telling <paramref name="problem"/> each problem with its place in the toxic ("" for the toxic itself).</summary>
    public Toxic? Read(JsonElement body, Action<string, string> problem)
    {
        var toxic = ToxicJson.Create(body, out var whole, textCheck);
        if (body.ValueKind != JsonValueKind.Object)
        {
            problem("", whole!);
            return null;
        }

        bool bad = false;
        void Problem(string place, string message)
        {
            problem(place, message);
            bad = true;
        }

        foreach (var key in body.EnumerateObject().Select(p => p.Name).Where(k => !Keys.Contains(k, StringComparer.Ordinal)))
        {
            var near = KeySuggestions.Closest(key, Keys);
            Problem(key, $"is not a key of a toxic{(near is null ? "." : $"; did you mean '{near}'?")} A toxic has {string.Join(", ", Keys)}");
        }

        if (toxic is not null)
        {
            return bad ? null : toxic;
        }

        var type = body.TryGetProperty("type", out var t) ? t : default;
        if (Probe(type, null, default) is { } typeProblem)
        {
            // Without a type there are no attributes to judge.
            Problem("type", typeProblem);
            return null;
        }

        foreach (var key in new[] { "stream", "toxicity", "name" })
        {
            if (body.TryGetProperty(key, out var value) && Probe(type, key, value) is { } message)
            {
                Problem(key, message);
            }
        }

        foreach (var key in new[] { "attributes", "match" })
        {
            if (!body.TryGetProperty(key, out var value))
            {
                continue;
            }

            if (value.ValueKind != JsonValueKind.Object)
            {
                if (Probe(type, key, value) is { } message)
                {
                    Problem(key, message);
                }

                continue;
            }

            foreach (var part in value.EnumerateObject())
            {
                if (Probe(type, key, Single(part)) is { } message)
                {
                    Problem($"{key}:{part.Name}", message);
                }
            }
        }

        if (!bad)
        {
            // A rule across parts: said of the toxic as a whole.
            Problem("", whole!);
        }

        return null;
    }

    /// <summary>What <see cref="ToxicJson.Create"/> says of a toxic with only <paramref name="type"/> and the one key given; null when nothing.</summary>
    private string? Probe(JsonElement type, string? key, JsonElement value)
    {
        using var buffer = new MemoryStream();
        using (var writer = new Utf8JsonWriter(buffer))
        {
            writer.WriteStartObject();
            if (type.ValueKind != JsonValueKind.Undefined)
            {
                writer.WritePropertyName("type");
                type.WriteTo(writer);
            }

            if (key is not null)
            {
                writer.WritePropertyName(key);
                value.WriteTo(writer);
            }

            writer.WriteEndObject();
        }

        using var document = JsonDocument.Parse(buffer.ToArray());
        return ToxicJson.Create(document.RootElement, out var problem, textCheck) is null ? problem : null;
    }

    private static JsonElement Single(JsonProperty part)
    {
        using var buffer = new MemoryStream();
        using (var writer = new Utf8JsonWriter(buffer))
        {
            writer.WriteStartObject();
            part.WriteTo(writer);
            writer.WriteEndObject();
        }

        using var document = JsonDocument.Parse(buffer.ToArray());
        return document.RootElement.Clone();
    }
}
