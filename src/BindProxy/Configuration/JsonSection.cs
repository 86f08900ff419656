using System.Globalization;
using System.Text;
using System.Text.Encodings.Web;
using System.Text.Json;
using System.Text.RegularExpressions;
using Microsoft.Extensions.Configuration;

namespace BindProxy.Configuration;

/// <summary>A <see cref="FieldShape.Objects"/> field read back from the configuration into JSON.</summary>
internal static partial class JsonSection
{
    /// <summary>
    /// A JSON array of objects as one JSON text, for its own reader to judge. The configuration
    /// keeps every value as text, so a value that reads as a JSON number or <c>true</c>/<c>false</c>
    /// is written as one again, but for the keys in <see cref="TextKeys"/>.
    /// </summary>
    public static string? ReadArray(IConfigurationSection field, List<(string, string, string)> misshapen)
    {
        if (!field.Exists())
        {
            return null;
        }

        if (field.Value is { } value)
        {
            // An empty array reads as an empty value.
            if (value.Length > 0)
            {
                misshapen.Add((field.Key, "a JSON array of objects", $"the single value '{value}'"));
            }

            return null;
        }

        var items = field.GetChildren().ToList();
        if (!items.Select((item, i) => item.Key == i.ToString(CultureInfo.InvariantCulture)).All(inOrder => inOrder))
        {
            misshapen.Add((field.Key, "a JSON array of objects", "an object"));
            return null;
        }

        using var buffer = new MemoryStream();
        using (var writer = new Utf8JsonWriter(buffer, new JsonWriterOptions { Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping }))
        {
            writer.WriteStartArray();
            foreach (var item in items)
            {
                WriteJson(writer, item, key: null);
            }

            writer.WriteEndArray();
        }

        return Encoding.UTF8.GetString(buffer.GetBuffer(), 0, (int)buffer.Length);
    }

    /// <summary>Keys whose values are text even when they read as numbers: a toxic's name, type and stream, a match's client.id and process name.</summary>
    private static readonly string[] TextKeys = ["name", "type", "stream", "client_id", "process"];

    private static void WriteJson(Utf8JsonWriter writer, IConfigurationSection section, string? key)
    {
        var children = section.GetChildren().ToList();
        if (section.Value is null && children.Count > 0)
        {
            writer.WriteStartObject();
            foreach (var child in children)
            {
                writer.WritePropertyName(child.Key);
                WriteJson(writer, child, child.Key);
            }

            writer.WriteEndObject();
            return;
        }

        var text = section.Value;
        if (text is null)
        {
            writer.WriteNullValue();
        }
        else if (key is not null && TextKeys.Contains(key, StringComparer.Ordinal))
        {
            writer.WriteStringValue(text);
        }
        else if (JsonNumber().IsMatch(text))
        {
            writer.WriteRawValue(text);
        }
        else if (bool.TryParse(text, out bool flag))
        {
            writer.WriteBooleanValue(flag);
        }
        else
        {
            writer.WriteStringValue(text);
        }
    }

    [GeneratedRegex(@"^-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?$")]
    private static partial Regex JsonNumber();
}
