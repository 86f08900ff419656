using System.Globalization;
using System.Text.Json;
using System.Text.RegularExpressions;

namespace BindProxy.KafkaSchema;

/// <summary>
/// Reads a Kafka checkout: the message definitions (clients/src/main/resources/common/message/*.json)
/// and the error codes (clients/src/main/java/org/apache/kafka/common/protocol/Errors.java, with
/// each error's exception class followed up its superclasses to see whether clients retry it).
/// Only requests, responses and the two headers are taken; the record and snapshot formats are not
/// on the wire between a client and a broker.
/// </summary>
internal static partial class KafkaJsonImporter
{
    public const string MessagesPath = "clients/src/main/resources/common/message";
    public const string ErrorsPath = "clients/src/main/java/org/apache/kafka/common/protocol/Errors.java";
    public const string ExceptionsPath = "clients/src/main/java/org/apache/kafka/common/errors";

    private static readonly JsonDocumentOptions JsonOptions = new() { CommentHandling = JsonCommentHandling.Skip, AllowTrailingCommas = true };

    public static ProtocolSchema Import(string kafkaRoot, string source)
    {
        var messages = new List<MessageDef>();
        foreach (var file in Directory.GetFiles(Path.Combine(kafkaRoot, MessagesPath), "*.json").Order(StringComparer.Ordinal))
        {
            using var document = JsonDocument.Parse(File.ReadAllText(file), JsonOptions);
            var root = document.RootElement;
            var kind = root.GetProperty("type").GetString()!;
            if (kind is "request" or "response" or "header")
            {
                messages.Add(ReadMessage(root, kind));
            }
        }

        var errors = ReadErrors(kafkaRoot);
        return new ProtocolSchema(source, [.. messages.OrderBy(m => m.ApiKey ?? -1).ThenBy(m => m.Kind, StringComparer.Ordinal).ThenBy(m => m.Name, StringComparer.Ordinal)], errors);
    }

    private static MessageDef ReadMessage(JsonElement root, string kind)
    {
        var name = root.GetProperty("name").GetString()!;
        short? apiKey = root.TryGetProperty("apiKey", out var key) ? key.GetInt16() : null;
        var valid = Versions.Parse(root.GetProperty("validVersions").GetString()!);
        var flexible = Versions.Parse(root.GetProperty("flexibleVersions").GetString()!);
        var unstable = root.TryGetProperty("latestVersionUnstable", out var u) && u.ValueKind == JsonValueKind.True;
        var fields = ReadFields(root, valid);
        var common = new List<StructDef>();
        if (root.TryGetProperty("commonStructs", out var structs))
        {
            foreach (var s in structs.EnumerateArray())
            {
                var versions = Versions.Parse(s.GetProperty("versions").GetString()!);
                common.Add(new StructDef(s.GetProperty("name").GetString()!, versions, ReadFields(s, versions)));
            }
        }

        return new MessageDef(name, kind, apiKey, valid, flexible, unstable, fields, common);
    }

    private static List<FieldDef> ReadFields(JsonElement parent, Versions parentVersions)
    {
        var list = new List<FieldDef>();
        if (!parent.TryGetProperty("fields", out var fields))
        {
            return list;
        }

        foreach (var f in fields.EnumerateArray())
        {
            var versions = Versions.Parse(f.GetProperty("versions").GetString()!);
            list.Add(new FieldDef(
                f.GetProperty("name").GetString()!,
                f.GetProperty("type").GetString()!.Replace(" ", "", StringComparison.Ordinal),
                versions,
                Optional(f, "nullableVersions") is { } n ? Versions.Parse(n) : Versions.None,
                Optional(f, "tag") is { } tag ? int.Parse(tag, CultureInfo.InvariantCulture) : null,
                Optional(f, "taggedVersions") is { } t ? Versions.Parse(t) : Versions.None,
                Optional(f, "flexibleVersions") is { } fv ? Versions.Parse(fv) : null,
                Optional(f, "default"),
                ReadFields(f, versions)));
        }

        return list;
    }

    private static string? Optional(JsonElement element, string name) =>
        element.TryGetProperty(name, out var value) ? value.ValueKind switch
        {
            JsonValueKind.String => value.GetString(),
            JsonValueKind.True => "true",
            JsonValueKind.False => "false",
            _ => value.GetRawText(),
        } : null;

    // One enum constant: NAME(code, "text" + "more text" | null, Exception::new | lambda),
    [GeneratedRegex("""^\s{4}([A-Z_]+)\(\s*(-?\d+)\s*,(.*?)\)\s*[,;]\s*$""", RegexOptions.Multiline | RegexOptions.Singleline)]
    private static partial Regex ErrorEntry();

    [GeneratedRegex("\"((?:[^\"\\\\]|\\\\.)*)\"")]
    private static partial Regex JavaString();

    [GeneratedRegex("""([A-Za-z]+)::new""")]
    private static partial Regex ExceptionConstructor();

    [GeneratedRegex("""class\s+([A-Za-z]+)\s+extends\s+([A-Za-z.]+)""")]
    private static partial Regex ClassExtends();

    private static List<ErrorDef> ReadErrors(string kafkaRoot)
    {
        var text = File.ReadAllText(Path.Combine(kafkaRoot, ErrorsPath));
        var start = text.IndexOf("    UNKNOWN_SERVER_ERROR(", StringComparison.Ordinal);
        var end = text.IndexOf(");", text.IndexOf("Exception::new);", start, StringComparison.Ordinal) is var e and > 0 ? e : start, StringComparison.Ordinal);
        if (start < 0 || end < 0)
        {
            throw new InvalidDataException($"{ErrorsPath}: the Errors enum was not found");
        }

        var parents = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var file in Directory.GetFiles(Path.Combine(kafkaRoot, ExceptionsPath), "*.java"))
        {
            if (ClassExtends().Match(File.ReadAllText(file)) is { Success: true } m)
            {
                parents[m.Groups[1].Value] = m.Groups[2].Value[(m.Groups[2].Value.LastIndexOf('.') + 1)..];
            }
        }

        var errors = new List<ErrorDef>();
        var body = text[start..(end + 2)];
        foreach (Match entry in ErrorEntry().Matches(body))
        {
            var rest = entry.Groups[3].Value;
            var message = string.Concat(JavaString().Matches(rest).Select(s => Regex.Unescape(s.Groups[1].Value)));
            var exception = ExceptionConstructor().Match(rest) is { Success: true } c ? c.Groups[1].Value : null;
            errors.Add(new ErrorDef(short.Parse(entry.Groups[2].Value, CultureInfo.InvariantCulture), entry.Groups[1].Value, IsRetriable(exception, parents), message));
        }

        if (errors.Count < 100 || errors.Select(x => x.Code).Distinct().Count() != errors.Count)
        {
            throw new InvalidDataException($"{ErrorsPath}: read {errors.Count} error codes, with duplicates or too few; has the enum's layout changed?");
        }

        return errors;
    }

    private static bool IsRetriable(string? exception, Dictionary<string, string> parents)
    {
        for (var depth = 0; exception is not null && depth < 16; depth++)
        {
            if (exception == "RetriableException")
            {
                return true;
            }

            exception = parents.GetValueOrDefault(exception);
        }

        return false;
    }
}
