using System.Text;
using System.Text.RegularExpressions;

namespace BindProxy.Tests.Architecture;

/// <summary>
/// Reads which of the product's namespaces a C# source file depends on, from its text: its
/// <c>using BindProxy.X</c> directives (static and alias ones too), fully qualified
/// <c>BindProxy.X.</c> names, and names qualified from BindProxy (<c>Kafka.KafkaSession</c> inside
/// <c>namespace BindProxy.Forwarding</c>) where the second part is a type or namespace declared
/// under that namespace. Comments and string literals are blanked first (the code inside an
/// interpolation hole stays); a lexer this small cannot be perfect, but it fails loudly rather
/// than quietly: a reference it mistook would show up as an edge, not hide one.
/// </summary>
internal static partial class SourceDependencies
{
    public const string Root = "BindProxy";

    /// <summary>The top namespace under BindProxy of every file, and the type and sub-namespace names declared under each.</summary>
    public static Dictionary<string, HashSet<string>> Declarations(IEnumerable<string> strippedSources)
    {
        var declared = new Dictionary<string, HashSet<string>>(StringComparer.Ordinal);
        foreach (var code in strippedSources)
        {
            var ns = NamespaceOf(code);
            var top = TopOf(ns);
            if (!declared.TryGetValue(top, out var names))
            {
                declared[top] = names = new HashSet<string>(StringComparer.Ordinal);
            }

            // BindProxy.Kafka.Brokers: "Brokers" is a name Kafka.Brokers.X starts with.
            var parts = ns.Split('.');
            if (parts.Length > 2)
            {
                names.Add(parts[2]);
            }

            foreach (Match m in TypeDeclaration().Matches(code))
            {
                names.Add(m.Groups["name"].Value);
            }
        }

        return declared;
    }

    /// <summary>Every reference of <paramref name="stripped"/> (the file's text with comments and strings blanked) to another top namespace.</summary>
    public static IEnumerable<SourceDependency> Find(string file, string original, string stripped, IReadOnlyDictionary<string, HashSet<string>> declared)
    {
        var from = TopOf(NamespaceOf(stripped));
        var originalLines = original.Split('\n');
        var lines = stripped.Split('\n');
        for (int i = 0; i < lines.Length; i++)
        {
            var line = lines[i];
            if (NamespaceLine().IsMatch(line))
            {
                continue;
            }

            var targets = new SortedSet<string>(StringComparer.Ordinal);
            foreach (Match m in QualifiedName().Matches(line))
            {
                targets.Add(m.Groups["top"].Value);
            }

            foreach (Match m in PartlyQualifiedName().Matches(line))
            {
                var top = m.Groups["top"].Value;
                if (declared.TryGetValue(top, out var names) && names.Contains(m.Groups["next"].Value))
                {
                    targets.Add(top);
                }
            }

            foreach (var to in targets.Where(t => t != from))
            {
                yield return new SourceDependency(file, i + 1, from, to, originalLines[i].Trim());
            }
        }
    }

    /// <summary>The namespace the file declares; the root for top-level statements or none.</summary>
    public static string NamespaceOf(string stripped) =>
        NamespaceLine().Match(stripped) is { Success: true } m ? m.Groups["ns"].Value : Root;

    /// <summary>BindProxy.Kafka.Brokers → Kafka; BindProxy → BindProxy.</summary>
    public static string TopOf(string ns)
    {
        var parts = ns.Split('.');
        return parts.Length > 1 && parts[0] == Root ? parts[1] : Root;
    }

    /// <summary>
    /// <paramref name="source"/> with every comment and string or char literal replaced by spaces
    /// (line breaks kept, so line numbers stay); code in interpolation holes is kept.
    /// </summary>
    public static string StripCommentsAndStrings(string source)
    {
        var output = source.ToCharArray();
        int i = 0;
        Code(source, output, ref i, hole: false);
        return new string(output);
    }

    /// <summary>Code up to the end, or in a hole up to its closing brace (left on it).</summary>
    private static void Code(string s, char[] output, ref int i, bool hole)
    {
        int depth = 0;
        while (i < s.Length)
        {
            char c = s[i];
            char next = i + 1 < s.Length ? s[i + 1] : '\0';
            if (c == '/' && next == '/')
            {
                int end = s.IndexOf('\n', i);
                Blank(output, i, end < 0 ? s.Length : end);
                i = end < 0 ? s.Length : end;
            }
            else if (c == '/' && next == '*')
            {
                int end = s.IndexOf("*/", i + 2, StringComparison.Ordinal);
                end = end < 0 ? s.Length : end + 2;
                Blank(output, i, end);
                i = end;
            }
            else if (c == '\'')
            {
                int start = i++;
                while (i < s.Length && s[i] != '\'' && s[i] != '\n')
                {
                    i += s[i] == '\\' ? 2 : 1;
                }

                i = Math.Min(i + 1, s.Length);
                Blank(output, start, i);
            }
            else if (StringStart(s, i) is var (dollars, verbatim, quotes) && quotes > 0)
            {
                StringLiteral(s, output, ref i, dollars, verbatim, quotes);
            }
            else if (hole && c == '{')
            {
                depth++;
                i++;
            }
            else if (hole && c == '}')
            {
                if (depth == 0)
                {
                    return;
                }

                depth--;
                i++;
            }
            else
            {
                i++;
            }
        }
    }

    /// <summary>At a string literal: how many $ it starts with, whether it is verbatim, and how many quotes open it (0: no string here).</summary>
    private static (int Dollars, bool Verbatim, int Quotes) StringStart(string s, int i)
    {
        if (i > 0 && (char.IsLetterOrDigit(s[i - 1]) || s[i - 1] == '_'))
        {
            return (0, false, 0);
        }

        int dollars = 0;
        bool verbatim = false;
        int j = i;
        while (j < s.Length && (s[j] == '$' || s[j] == '@'))
        {
            if (s[j] == '$')
            {
                dollars++;
            }
            else
            {
                verbatim = true;
            }

            j++;
        }

        int quotes = 0;
        while (j + quotes < s.Length && s[j + quotes] == '"')
        {
            quotes++;
        }

        return (dollars, verbatim, quotes);
    }

    private static void StringLiteral(string s, char[] output, ref int i, int dollars, bool verbatim, int quotes)
    {
        int start = i;
        i += dollars + (verbatim ? 1 : 0);
        bool raw = quotes >= 3;
        if (!raw)
        {
            quotes = 1; // "" is an empty string: opened by the first quote, closed by the second
        }

        i += quotes;
        int holeBraces = raw ? Math.Max(dollars, 1) : 1;
        while (i < s.Length)
        {
            char c = s[i];
            if (raw && c == '"' && Run(s, i, '"') >= quotes)
            {
                i += quotes;
                break;
            }

            if (!raw && c == '"')
            {
                if (verbatim && i + 1 < s.Length && s[i + 1] == '"')
                {
                    i += 2;
                    continue;
                }

                i++;
                break;
            }

            if (!raw && !verbatim && c == '\\')
            {
                i += 2;
                continue;
            }

            if (!raw && !verbatim && c == '\n')
            {
                break; // unterminated: stop at the line's end rather than swallow the file
            }

            if (dollars > 0 && c == '{')
            {
                int run = Run(s, i, '{');
                if (!raw && run >= 2)
                {
                    i += 2; // {{ is a literal brace
                    continue;
                }

                if (run >= holeBraces)
                {
                    i += run;
                    Blank(output, start, i);
                    Code(s, output, ref i, hole: true);
                    i = Math.Min(i + holeBraces, s.Length);
                    start = i;
                    continue;
                }
            }

            i++;
        }

        Blank(output, start, Math.Min(i, s.Length));
    }

    private static int Run(string s, int i, char c)
    {
        int n = 0;
        while (i + n < s.Length && s[i + n] == c)
        {
            n++;
        }

        return n;
    }

    private static void Blank(char[] output, int start, int end)
    {
        for (int k = start; k < end; k++)
        {
            if (output[k] is not '\n' and not '\r')
            {
                output[k] = ' ';
            }
        }
    }

    [GeneratedRegex(@"^\s*namespace\s+(?<ns>[\w.]+)", RegexOptions.Multiline)]
    private static partial Regex NamespaceLine();

    // using BindProxy.X; using static BindProxy.X.Y; using A = BindProxy.X.Y; BindProxy.X.Y.Z()
    [GeneratedRegex(@"(?<![\w.])(?:global::)?BindProxy\.(?<top>\w+)")]
    private static partial Regex QualifiedName();

    // Kafka.KafkaSession inside namespace BindProxy.Forwarding: resolved from BindProxy.
    [GeneratedRegex(@"(?<![\w.:])(?<top>[A-Z]\w*)\s*\.\s*(?<next>[A-Z]\w*)")]
    private static partial Regex PartlyQualifiedName();

    [GeneratedRegex(@"\b(?:record\s+(?:struct|class)|class|struct|interface|enum|record)\s+(?<name>[A-Z]\w*)")]
    private static partial Regex TypeDeclaration();

    public static StringBuilder Describe(IEnumerable<SourceDependency> dependencies, Func<SourceDependency, string> why)
    {
        var text = new StringBuilder();
        foreach (var d in dependencies)
        {
            text.Append(d.File).Append(':').Append(d.Line).Append(": ").Append(why(d)).Append(": ").AppendLine(d.Text);
        }

        return text;
    }
}
