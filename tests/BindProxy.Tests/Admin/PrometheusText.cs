using System.Globalization;
using System.Text.RegularExpressions;

namespace BindProxy.Tests.Admin;

/// <summary>Reads samples out of Prometheus text exposition format.</summary>
internal static partial class PrometheusText
{
    /// <summary>
    /// The value of the one sample named <paramref name="name"/> whose labels include every one of
    /// <paramref name="labels"/>; null when there is none. Several matches fail the test.
    /// </summary>
    public static double? Value(string text, string name, params (string Label, string Value)[] labels)
    {
        var matches = Samples(text)
            .Where(s => s.Name == name && labels.All(l => s.Labels.TryGetValue(l.Label, out var v) && v == l.Value))
            .ToList();
        Assert.True(matches.Count <= 1, $"{matches.Count} samples of {name} match {string.Join(",", labels)}:\n{text}");
        return matches.Count == 0 ? null : matches[0].Value;
    }

    public static IEnumerable<(string Name, Dictionary<string, string> Labels, double Value)> Samples(string text)
    {
        foreach (var line in text.Split('\n'))
        {
            var match = SampleLine().Match(line.TrimEnd('\r'));
            if (!match.Success)
            {
                continue;
            }

            var labels = LabelPair().Matches(match.Groups["labels"].Value)
                .ToDictionary(m => m.Groups["k"].Value, m => m.Groups["v"].Value, StringComparer.Ordinal);
            var valueText = match.Groups["value"].Value;
            double value = valueText switch
            {
                "+Inf" => double.PositiveInfinity,
                "-Inf" => double.NegativeInfinity,
                _ => double.Parse(valueText, NumberStyles.Float, CultureInfo.InvariantCulture),
            };
            yield return (match.Groups["name"].Value, labels, value);
        }
    }

    [GeneratedRegex(@"^(?<name>[a-zA-Z_:][a-zA-Z0-9_:]*)(\{(?<labels>.*)\})?\s+(?<value>\S+)(\s+\d+)?$")]
    private static partial Regex SampleLine();

    [GeneratedRegex(@"(?<k>[a-zA-Z_][a-zA-Z0-9_]*)=""(?<v>(?:[^""\\]|\\.)*)""")]
    private static partial Regex LabelPair();
}
