using System.Globalization;

namespace BindProxy.KafkaSchema;

/// <summary>
/// Applies kafka-protocol.supplement: message versions newer than the imported checkout, each a
/// version bump and the fields it appends. An entry whose message already reaches its version in
/// the checkout is skipped, so the file empties itself of meaning as the checkout catches up.
/// </summary>
internal static class Supplement
{
    public const string FileName = "kafka-protocol.supplement";

    public static ProtocolSchema Apply(ProtocolSchema schema, string text, out int applied)
    {
        applied = 0;
        var messages = schema.Messages.ToDictionary(m => m.Name, StringComparer.Ordinal);
        var original = messages.ToDictionary(m => m.Key, m => m.Value.ValidVersions.Max, StringComparer.Ordinal);
        var lineNumber = 0;
        foreach (var raw in text.Split('\n'))
        {
            lineNumber++;
            var line = raw.Trim();
            if (line.Length == 0 || line.StartsWith('#'))
            {
                continue;
            }

            var words = line.Split(' ');
            var path = words[1].Split('.');
            if (!messages.TryGetValue(path[0], out var message))
            {
                throw new InvalidDataException($"{FileName}:{lineNumber}: no message {path[0]}");
            }

            switch (words[0])
            {
                case "version":
                    var version = short.Parse(words[2], CultureInfo.InvariantCulture);
                    if (original[message.Name] < version)
                    {
                        messages[message.Name] = message with { ValidVersions = message.ValidVersions with { Max = version } };
                        applied++;
                    }

                    break;
                case "field":
                    // The field's own line in the schema's notation: field NAME TYPE VERSIONS [options].
                    var field = SchemaText.Parse($"message X request versions=0+ flexible=none\n  field {string.Join(' ', words[2..])}\n").Messages[0].Fields[0];
                    if (original[message.Name] < field.Versions.Min)
                    {
                        messages[message.Name] = path.Length == 1
                            ? message with { Fields = [.. message.Fields, field] }
                            : message with { Fields = Append(message.Fields, path[1], field, lineNumber) };
                        applied++;
                    }

                    break;
                default:
                    throw new InvalidDataException($"{FileName}:{lineNumber}: unexpected '{words[0]}'");
            }
        }

        return schema with { Messages = [.. schema.Messages.Select(m => messages[m.Name])] };
    }

    private static List<FieldDef> Append(IReadOnlyList<FieldDef> fields, string structName, FieldDef field, int lineNumber)
    {
        var found = false;
        var result = fields.Select(f =>
        {
            if (f.IsStruct && f.ElementType == structName && f.Fields.Count > 0)
            {
                found = true;
                return f with { Fields = [.. f.Fields, field] };
            }

            return f;
        }).ToList();
        return found ? result : throw new InvalidDataException($"{FileName}:{lineNumber}: no struct {structName} among the message's fields");
    }
}
