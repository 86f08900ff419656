using System.Globalization;
using System.Text;

namespace BindProxy.KafkaSchema;

/// <summary>
/// The project's compact schema: the protocol's facts, one line each, nesting by indentation.
/// </summary>
/// <remarks>
/// <code>
/// source apache/kafka COMMIT VERSION
/// message NAME request|response|header [key=N] versions=R flexible=R [unstable]
///   field NAME TYPE R [nullable=R] [tag=N tagged=R] [flexible=R] [default=VALUE]
///     field ...                       (the fields of an inline struct, one level deeper)
///   struct NAME R                     (a struct the message's fields share)
///     field ...
/// error CODE NAME retriable|fatal MESSAGE
/// </code>
/// R is Kafka's version notation: "none", "3", "3+", "0-2". VALUE is the default as Kafka
/// writes it, or "" for the empty string. A field's TYPE is a primitive (bool, int8, int16,
/// uint16, int32, int64, float64, string, bytes, records, uuid), a struct name, or either after [].
/// </remarks>
internal static class SchemaText
{
    public static string Write(ProtocolSchema schema)
    {
        var text = new StringBuilder();
        text.Append("# The Kafka protocol as BindProxy's generated code knows it. Written by\n");
        text.Append("# `dotnet run --project src/BindProxy.KafkaSchema -- update --kafka DIR`; do not edit.\n");
        text.Append("source ").Append(schema.Source).Append('\n');
        foreach (var message in schema.Messages)
        {
            text.Append("message ").Append(message.Name).Append(' ').Append(message.Kind);
            if (message.ApiKey is { } key)
            {
                text.Append(" key=").Append(key.ToString(CultureInfo.InvariantCulture));
            }

            text.Append(" versions=").Append(message.ValidVersions).Append(" flexible=").Append(message.FlexibleVersions);
            if (message.LatestVersionUnstable)
            {
                text.Append(" unstable");
            }

            text.Append('\n');
            WriteFields(text, message.Fields, 1);
            foreach (var s in message.CommonStructs)
            {
                text.Append("  struct ").Append(s.Name).Append(' ').Append(s.Versions).Append('\n');
                WriteFields(text, s.Fields, 2);
            }
        }

        foreach (var error in schema.Errors)
        {
            text.Append("error ").Append(error.Code.ToString(CultureInfo.InvariantCulture)).Append(' ').Append(error.Name)
                .Append(error.Retriable ? " retriable" : " fatal").Append(error.Message.Length > 0 ? " " + error.Message.ReplaceLineEndings(" ") : "").Append('\n');
        }

        return text.ToString();
    }

    private static void WriteFields(StringBuilder text, IReadOnlyList<FieldDef> fields, int depth)
    {
        foreach (var f in fields)
        {
            text.Append(' ', depth * 2).Append("field ").Append(f.Name).Append(' ').Append(f.Type).Append(' ').Append(f.Versions);
            if (!f.NullableVersions.IsNone)
            {
                text.Append(" nullable=").Append(f.NullableVersions);
            }

            if (f.Tag is { } tag)
            {
                text.Append(" tag=").Append(tag.ToString(CultureInfo.InvariantCulture)).Append(" tagged=").Append(f.TaggedVersions);
            }

            if (f.FlexibleVersions is { } flexible)
            {
                text.Append(" flexible=").Append(flexible);
            }

            if (f.Default is { } value)
            {
                text.Append(" default=").Append(value.Length == 0 ? "\"\"" : value);
            }

            text.Append('\n');
            WriteFields(text, f.Fields, depth + 1);
        }
    }

    public static ProtocolSchema Parse(string text)
    {
        var lines = text.Split('\n');
        var index = 0;
        string source = "";
        var messages = new List<MessageDef>();
        var errors = new List<ErrorDef>();
        while (index < lines.Length)
        {
            var line = lines[index];
            if (line.Length == 0 || line.StartsWith('#'))
            {
                index++;
                continue;
            }

            var words = line.Split(' ');
            switch (words[0])
            {
                case "source":
                    source = line["source ".Length..];
                    index++;
                    break;
                case "message":
                    index++;
                    messages.Add(ParseMessage(words, lines, ref index));
                    break;
                case "error":
                    var parts = line.Split(' ', 5);
                    errors.Add(new ErrorDef(short.Parse(parts[1], CultureInfo.InvariantCulture), parts[2], parts[3] == "retriable", parts.Length > 4 ? parts[4] : ""));
                    index++;
                    break;
                default:
                    throw new FormatException($"line {index + 1}: unexpected '{words[0]}'");
            }
        }

        return new ProtocolSchema(source, messages, errors);
    }

    private static MessageDef ParseMessage(string[] words, string[] lines, ref int index)
    {
        var options = Options(words, 3);
        var fields = ParseFields(lines, ref index, 1);
        var structs = new List<StructDef>();
        while (index < lines.Length && lines[index].StartsWith("  struct ", StringComparison.Ordinal))
        {
            var s = lines[index].Trim().Split(' ');
            index++;
            structs.Add(new StructDef(s[1], Versions.Parse(s[2]), ParseFields(lines, ref index, 2)));
        }

        return new MessageDef(
            words[1],
            words[2],
            options.TryGetValue("key", out var key) ? short.Parse(key, CultureInfo.InvariantCulture) : null,
            Versions.Parse(options["versions"]),
            Versions.Parse(options["flexible"]),
            options.ContainsKey("unstable"),
            fields,
            structs);
    }

    private static List<FieldDef> ParseFields(string[] lines, ref int index, int depth)
    {
        var prefix = new string(' ', depth * 2) + "field ";
        var fields = new List<FieldDef>();
        while (index < lines.Length && lines[index].StartsWith(prefix, StringComparison.Ordinal))
        {
            var words = lines[index].Trim().Split(' ');
            var options = Options(words, 4);
            index++;
            fields.Add(new FieldDef(
                words[1],
                words[2],
                Versions.Parse(words[3]),
                options.TryGetValue("nullable", out var n) ? Versions.Parse(n) : Versions.None,
                options.TryGetValue("tag", out var tag) ? int.Parse(tag, CultureInfo.InvariantCulture) : null,
                options.TryGetValue("tagged", out var tagged) ? Versions.Parse(tagged) : Versions.None,
                options.TryGetValue("flexible", out var flexible) ? Versions.Parse(flexible) : null,
                options.TryGetValue("default", out var value) ? (value == "\"\"" ? "" : value) : null,
                ParseFields(lines, ref index, depth + 1)));
        }

        return fields;
    }

    private static Dictionary<string, string> Options(string[] words, int from)
    {
        var options = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var word in words.Skip(from))
        {
            var eq = word.IndexOf('=', StringComparison.Ordinal);
            options[eq < 0 ? word : word[..eq]] = eq < 0 ? "" : word[(eq + 1)..];
        }

        return options;
    }
}
