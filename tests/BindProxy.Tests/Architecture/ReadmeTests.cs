using System.Text.RegularExpressions;
using BindProxy.Tests.Configuration;

namespace BindProxy.Tests.Architecture;

/// <summary>
/// README.md is read by someone new: a first screen that says what the proxy is for, a table of
/// contents that reaches every section, the runnable demo beside the quick start, and internals
/// and benchmark figures in the files made for them. Every link into a section of README,
/// docs/ARCHITECTURE.md or bench/README.md goes somewhere.
/// </summary>
public sealed partial class ReadmeTests
{
    private static readonly string Root = ShippedConfigTests.RepositoryRoot();

    private static string Read(string file) => File.ReadAllText(Path.Combine(Root, file));

    /// <summary>The headings of a markdown file outside its code blocks: (level, text, anchor).</summary>
    private static List<(int Level, string Text, string Anchor)> Headings(string markdown)
    {
        var headings = new List<(int, string, string)>();
        bool fenced = false;
        foreach (var line in markdown.Split('\n'))
        {
            if (line.StartsWith("```", StringComparison.Ordinal))
            {
                fenced = !fenced;
            }
            else if (!fenced && Heading().Match(line) is { Success: true } m)
            {
                headings.Add((m.Groups[1].Length, m.Groups[2].Value.Trim(), Anchor(m.Groups[2].Value.Trim())));
            }
        }

        return headings;
    }

    /// <summary>The anchor a heading gets (GitHub's rule: lower case, punctuation dropped, spaces become hyphens).</summary>
    private static string Anchor(string heading) =>
        NotInAnchor().Replace(heading.ToLowerInvariant(), "").Replace(' ', '-');

    private static string Section(string markdown, string heading)
    {
        int start = markdown.IndexOf($"\n## {heading}\n", StringComparison.Ordinal);
        Assert.True(start >= 0, $"no '## {heading}' section");
        int end = markdown.IndexOf("\n## ", start + 4, StringComparison.Ordinal);
        return end < 0 ? markdown[start..] : markdown[start..end];
    }

    [Fact]
    public void The_contents_reach_every_section_and_every_link_to_a_section_goes_somewhere()
    {
        var readme = Read("README.md");
        var sections = Headings(readme).Where(h => h.Level == 2 && h.Text != "Contents").ToList();
        var contents = Section(readme, "Contents");
        var missing = sections.Where(h => !contents.Contains($"(#{h.Anchor})", StringComparison.Ordinal)).Select(h => h.Text).ToList();
        Assert.True(missing.Count == 0, $"sections missing from the contents: {string.Join(", ", missing)}");

        var files = new[] { "README.md", "docs/ARCHITECTURE.md", "bench/README.md" };
        var anchors = files.ToDictionary(f => f, f => Headings(Read(f)).Select(h => h.Anchor).ToHashSet());
        var broken = new List<string>();
        foreach (var file in files)
        {
            foreach (Match link in Link().Matches(Read(file)))
            {
                var target = link.Groups["file"].Value.Length == 0
                    ? file
                    : Path.GetRelativePath(Root, Path.GetFullPath(Path.Combine(Root, Path.GetDirectoryName(file)!, link.Groups["file"].Value))).Replace('\\', '/');
                if (!anchors.TryGetValue(target, out var known) || !known.Contains(link.Groups["anchor"].Value))
                {
                    broken.Add($"{file}: {link.Value}");
                }
            }
        }

        Assert.True(broken.Count == 0, "links to sections that do not exist:\n" + string.Join("\n", broken));
    }

    [Fact]
    public void The_first_screen_is_plain_and_the_demo_is_beside_the_quick_start()
    {
        var readme = Read("README.md");
        var first = readme[..readme.IndexOf("\n## ", StringComparison.Ordinal)];
        Assert.True(first.Split('\n').Length <= 25, $"the text before the first section is {first.Split('\n').Length} lines");
        Assert.Contains("*re-originates* the connection: it opens a new one to the server from a loopback", first, StringComparison.Ordinal);
        foreach (var use in new[] { "Wireshark", "Load tests", "config file" })
        {
            Assert.Contains(use, first, StringComparison.Ordinal);
        }

        var order = Headings(readme).Where(h => h.Level == 2).Select(h => h.Text).Take(5).ToList();
        Assert.Equal(["Contents", "Set up", "Quick start", "Demo", "Install"], order);
    }

    [Fact]
    public void Internals_and_benchmark_figures_live_in_their_own_files()
    {
        var readme = Read("README.md");
        var architecture = Read("docs/ARCHITECTURE.md");
        var bench = Read("bench/README.md");
        foreach (var inside in new[] { "accept4", "4 × 64 KiB", "BindProxy relay N" })
        {
            Assert.DoesNotContain(inside, readme, StringComparison.Ordinal);
            Assert.Contains(inside, architecture, StringComparison.Ordinal);
        }

        foreach (var figure in new[] { "716 against", "×1.63 / ×1.43" })
        {
            Assert.DoesNotContain(figure, readme, StringComparison.Ordinal);
            Assert.Contains(figure, bench, StringComparison.Ordinal);
        }

        Assert.DoesNotContain("Nothing else on the machine uses", readme, StringComparison.Ordinal);
    }

    [GeneratedRegex(@"^(#{1,6})\s+(.+)$")]
    private static partial Regex Heading();

    [GeneratedRegex(@"[^a-z0-9 _-]")]
    private static partial Regex NotInAnchor();

    // [text](#anchor) or [text](path.md#anchor)
    [GeneratedRegex(@"\]\((?<file>[^)#\s]*\.md)?#(?<anchor>[^)\s]+)\)")]
    private static partial Regex Link();
}
