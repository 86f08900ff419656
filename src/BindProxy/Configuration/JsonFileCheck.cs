using System.Text;
using System.Text.Json;

namespace BindProxy.Configuration;

/// <summary>
/// Checks a configuration file's JSON before the configuration reads it, in the dialect the JSON
/// configuration provider accepts (comments, trailing commas), so a mistake is reported with the
/// line and column where it is instead of "could not parse the JSON file".
/// </summary>
internal static class JsonFileCheck
{
    private static readonly JsonReaderOptions Options = new() { CommentHandling = JsonCommentHandling.Skip, AllowTrailingCommas = true };

    /// <summary>
    /// Null when <paramref name="utf8"/> is a JSON object the configuration can read; else what is
    /// wrong and where, worded to follow the file's name ("is not valid JSON: line 3, column 40: ...").
    /// </summary>
    public static string? Check(ReadOnlySpan<byte> utf8)
    {
        if (utf8.StartsWith(Encoding.UTF8.Preamble))
        {
            utf8 = utf8[Encoding.UTF8.Preamble.Length..];
        }

        const string Expected = $"it must hold a JSON object such as {{ \"{ProxyConfig.SectionName}\": {{ \"{nameof(ProxyConfig.Routes)}\": {{ ... }} }} }}";
        if (utf8.Trim(" \t\r\n"u8).IsEmpty)
        {
            return $"is empty; {Expected}";
        }

        var reader = new Utf8JsonReader(utf8, Options);
        // The keys seen in each open object (null for an array): configuration keys are
        // case-insensitive, and the provider refuses a duplicate without saying where it is.
        var open = new Stack<HashSet<string>?>();
        try
        {
            if (!reader.Read())
            {
                return $"holds only comments; {Expected}";
            }

            if (reader.TokenType != JsonTokenType.StartObject)
            {
                return $"is not a JSON object: {Position(utf8, reader.TokenStartIndex)}: found {Describe(reader.TokenType)}; {Expected}";
            }

            open.Push(new HashSet<string>(StringComparer.OrdinalIgnoreCase));
            while (reader.Read())
            {
                switch (reader.TokenType)
                {
                    case JsonTokenType.StartObject:
                        open.Push(new HashSet<string>(StringComparer.OrdinalIgnoreCase));
                        break;
                    case JsonTokenType.StartArray:
                        open.Push(null);
                        break;
                    case JsonTokenType.EndObject or JsonTokenType.EndArray:
                        open.Pop();
                        break;
                    case JsonTokenType.PropertyName when open.Peek() is { } keys:
                        var key = reader.GetString()!;
                        if (!keys.Add(key))
                        {
                            return $"has a key twice: {Position(utf8, reader.TokenStartIndex)}: \"{key}\" is already set in the same object (keys are case-insensitive)";
                        }

                        break;
                }
            }

            return null;
        }
        catch (JsonException e)
        {
            if (OpenAtEnd(utf8) is int depth && depth > 0)
            {
                return $"is not valid JSON: {Position(utf8, utf8.Length)}: the file ends before the JSON does ({depth} object(s) or array(s) still open); was it cut short?";
            }

            return $"is not valid JSON: {Position(utf8, Offset(utf8, e.LineNumber ?? 0, e.BytePositionInLine ?? 0))}: {Reason(e.Message)}";
        }
    }

    /// <summary>
    /// How many objects and arrays are still open when everything in the file is a valid start of
    /// a JSON text that only lacks its end (a file cut short); null when the file goes wrong before.
    /// </summary>
    private static int? OpenAtEnd(ReadOnlySpan<byte> utf8)
    {
        var reader = new Utf8JsonReader(utf8, isFinalBlock: false, new JsonReaderState(Options));
        try
        {
            while (reader.Read())
            {
            }

            return reader.CurrentDepth + (reader.TokenType is JsonTokenType.StartObject or JsonTokenType.StartArray ? 1 : 0);
        }
        catch (JsonException)
        {
            return null;
        }
    }

    /// <summary>"line L, column C" (both from 1; columns count characters) of a byte offset.</summary>
    internal static string Position(ReadOnlySpan<byte> utf8, long offset)
    {
        offset = Math.Clamp(offset, 0, utf8.Length);
        var before = utf8[..(int)offset];
        int line = before.Count((byte)'\n') + 1;
        int lineStart = before.LastIndexOf((byte)'\n') + 1;
        int column = Encoding.UTF8.GetCharCount(before[lineStart..]) + 1;
        return $"line {line}, column {column}";
    }

    private static long Offset(ReadOnlySpan<byte> utf8, long line, long bytePositionInLine)
    {
        int start = 0;
        for (long i = 0; i < line; i++)
        {
            int next = utf8[start..].IndexOf((byte)'\n');
            if (next < 0)
            {
                return utf8.Length;
            }

            start += next + 1;
        }

        return start + bytePositionInLine;
    }

    // System.Text.Json ends its messages with its own zero-based position; ours replaces it.
    private static string Reason(string message)
    {
        int at = message.IndexOf(" LineNumber:", StringComparison.Ordinal);
        return (at < 0 ? message : message[..at]).TrimEnd();
    }

    private static string Describe(JsonTokenType token) => token switch
    {
        JsonTokenType.StartArray => "an array",
        JsonTokenType.String => "a string",
        JsonTokenType.Number => "a number",
        JsonTokenType.True or JsonTokenType.False => "true or false",
        JsonTokenType.Null => "null",
        _ => token.ToString(),
    };
}
