using System.Text.Json;

namespace BindProxy.Bench.Reporting;

/// <summary>
/// The records a run appended to its results file, one JSON object per line:
/// <c>{"test": "...", "contender": "...", "round": N, "result": {...}, ...}</c>.
/// </summary>
internal sealed class ResultSet : IDisposable
{
    private readonly List<JsonDocument> _documents = [];

    public List<string> Problems { get; } = [];

    public static ResultSet Load(string path)
    {
        var set = new ResultSet();
        var lineNumber = 0;
        foreach (var line in File.ReadLines(path))
        {
            lineNumber++;
            if (string.IsNullOrWhiteSpace(line))
            {
                continue;
            }

            try
            {
                set._documents.Add(JsonDocument.Parse(line));
            }
            catch (JsonException e)
            {
                set.Problems.Add($"line {lineNumber}: {e.Message}");
            }
        }

        return set;
    }

    public IEnumerable<JsonElement> Records(string test) =>
        _documents.Select(d => d.RootElement).Where(r => Text(r, "test") == test);

    /// <summary>Contenders in first-seen order, which is the order the run script lists them.</summary>
    public List<string> Contenders() =>
        [.. _documents.Select(d => Text(d.RootElement, "contender")).OfType<string>().Distinct(StringComparer.Ordinal)];

    public void Dispose()
    {
        foreach (var document in _documents)
        {
            document.Dispose();
        }
    }

    public static string? Text(JsonElement element, string name) =>
        element.ValueKind == JsonValueKind.Object && element.TryGetProperty(name, out var value) && value.ValueKind == JsonValueKind.String
            ? value.GetString()
            : null;

    public static double? Number(JsonElement element, params string[] path)
    {
        var current = element;
        foreach (var name in path)
        {
            if (current.ValueKind != JsonValueKind.Object || !current.TryGetProperty(name, out current))
            {
                return null;
            }
        }

        return current.ValueKind == JsonValueKind.Number ? current.GetDouble() : null;
    }

    public static bool Flag(JsonElement element, string name) =>
        element.ValueKind == JsonValueKind.Object && element.TryGetProperty(name, out var value) && value.ValueKind == JsonValueKind.True;
}
