using System.Text.RegularExpressions;
using BindProxy.Configuration;
using BindProxy.Tests.Configuration;

namespace BindProxy.Tests.Architecture;

/// <summary>
/// The product's namespaces depend on each other one way, down the layers below, so a part can be
/// read, tested and changed knowing only what lies under it. Checked on the source text (see
/// <see cref="SourceDependencies"/>), so a failure names the file, the line and the edge.
/// </summary>
public sealed partial class LayeringTests
{
    /// <summary>
    /// The layers, bottom first; a namespace (with all its sub-namespaces, BindProxy.Kafka.Brokers
    /// belonging to Kafka) may use namespaces of lower layers, and others of its own layer only
    /// where no cycle comes of it. A new folder under src/BindProxy needs a line here.
    /// </summary>
    private static readonly Dictionary<string, int> Layers = new(StringComparer.Ordinal)
    {
        // Configuration records and their validation; addresses, ranges and source pools.
        ["Configuration"] = 0,
        ["Addressing"] = 0,

        // Sockets and listeners; connecting upstream from a source address; nftables and cgroups.
        ["Transport"] = 1,
        ["Outbound"] = 1,
        ["Interception"] = 1,

        // What the configuration and the running proxy look like in Wireshark's and tshark's words.
        ["Wireshark"] = 1,

        // Writing pcapng of what the proxy forwards, and the taps its sockets report to.
        ["Capture"] = 1,

        // Faults: the toxics of each route (toxiproxy's model), which the forwarders apply.
        ["Faults"] = 1,

        // A connection from accept to upstream and back: limits, assignment, registry, drain, metrics.
        ["Forwarding"] = 2,

        // The protocols on top of a forwarded connection.
        ["Kafka"] = 3,
        ["Http"] = 3,

        // What puts it all together and shows it.
        ["Hosting"] = 4,
        ["Admin"] = 4,
        ["Cli"] = 4,

        // Program.cs: top-level statements, above everything.
        [SourceDependencies.Root] = 5,
    };

    [Fact]
    public void Namespaces_use_only_layers_below_them_and_no_cycles()
    {
        var (dependencies, declared) = ProductDependencies();
        var edges = dependencies.Select(d => (d.From, d.To)).ToHashSet();

        var problems = new List<(SourceDependency Where, string What)>();
        foreach (var d in dependencies)
        {
            int from = Layers[d.From];
            int to = Layers[d.To];
            if (to > from)
            {
                problems.Add((d, $"{d.From} (layer {from}) uses {d.To}, a layer above it ({to})"));
            }
            else if (to == from && Reaches(d.To, d.From, edges, from))
            {
                problems.Add((d, $"{d.From} uses {d.To} on its own layer ({from}), and {d.To} leads back to {d.From}: a cycle"));
            }
        }

        Assert.True(problems.Count == 0,
            $"dependencies against the layering (table in {nameof(LayeringTests)}):\n" +
            SourceDependencies.Describe(problems.Select(p => p.Where), d => problems.First(p => p.Where == d).What));
        Assert.True(declared.Count >= 10, $"found only {declared.Count} namespaces under src/BindProxy; is the source still read from there?");
    }

    [Fact]
    public void Every_namespace_has_a_layer()
    {
        var (_, declared) = ProductDependencies(checkTable: false);
        var missing = declared.Where(n => !Layers.ContainsKey(n)).ToList();
        Assert.True(missing.Count == 0, $"namespaces without a layer: {string.Join(", ", missing)}; add each to {nameof(LayeringTests)}.{nameof(Layers)}");
    }

    [Fact]
    public void Every_file_declares_the_namespace_of_its_folder()
    {
        var product = Path.Combine(ShippedConfigTests.RepositoryRoot(), "src", "BindProxy");
        var wrong = new List<string>();
        foreach (var (path, stripped) in ProductFiles(product))
        {
            var folder = Path.GetDirectoryName(path)!;
            var expected = folder.Length == 0 ? SourceDependencies.Root : $"{SourceDependencies.Root}.{folder.Replace(Path.DirectorySeparatorChar, '.')}";
            var declared = SourceDependencies.NamespaceOf(stripped);
            if (declared != expected)
            {
                wrong.Add($"src/BindProxy/{path.Replace(Path.DirectorySeparatorChar, '/')}: namespace {declared}, but its folder says {expected}");
            }
        }

        Assert.True(wrong.Count == 0, "a file's namespace is its folder under src/BindProxy:\n" + string.Join("\n", wrong));
    }

    [Fact]
    public void No_type_sits_in_the_root_namespace()
    {
        var product = Path.Combine(ShippedConfigTests.RepositoryRoot(), "src", "BindProxy");
        var atRoot = ProductFiles(product)
            .Where(f => SourceDependencies.NamespaceOf(f.Stripped) == SourceDependencies.Root && f.Path != "Program.cs")
            .Select(f => f.Path)
            .ToList();
        var programTypes = TypeDeclaration().Matches(ProductFiles(product).Single(f => f.Path == "Program.cs").Stripped)
            .Select(m => m.Groups["name"].Value)
            .ToList();

        Assert.True(atRoot.Count == 0, $"files with no namespace of their own (types in {SourceDependencies.Root}): {string.Join(", ", atRoot)}");
        Assert.True(programTypes.Count == 0, $"Program.cs holds the top-level statements only; these types belong in a folder: {string.Join(", ", programTypes)}");
    }

    [Fact]
    public void The_namespace_checks_see_a_misplaced_file()
    {
        Assert.Equal("BindProxy.Transport", SourceDependencies.NamespaceOf(SourceDependencies.StripCommentsAndStrings("// namespace BindProxy.Cli;\nnamespace BindProxy.Transport;\ninternal sealed class A;")));
        Assert.Equal(SourceDependencies.Root, SourceDependencies.NamespaceOf(SourceDependencies.StripCommentsAndStrings("internal sealed class A;")));
        Assert.Equal(["Helper", "Other"], TypeDeclaration().Matches("var x = 1;\ninternal static class Helper { }\npublic sealed record Other(int A);\n// class Not\n").Select(m => m.Groups["name"].Value).Take(2));
    }

    [Fact]
    public void Reads_usings_and_qualified_names_but_not_comments_or_strings()
    {
        const string Source = """"
            using System.Net;
            using BindProxy.Kafka;
            using static BindProxy.Admin.Views;
            using Api = global::BindProxy.Http.Proxy;

            namespace BindProxy.Forwarding.Deep;

            // using BindProxy.Cli;
            /* BindProxy.Hosting.Host
               BindProxy.Hosting.Host */
            internal sealed class Handler
            {
                private readonly string _a = "BindProxy.Cli.X";
                private readonly string _b = @"BindProxy.Cli.X ""quoted"" ";
                private readonly string _c = $"{'}'} {Interception.Table.Name} {{BindProxy.Cli.X}}";
                private readonly string _d = $$"""
                    {BindProxy.Cli.X} {{Outbound.Connector.Name}}
                    """;
                private readonly char _e = '"';
                private readonly Configuration.RouteModel? _f;
                private readonly int _g = route.Kafka.MaxFrameSize + Kafka.MaxFrameSize;
                private readonly Transport.Unknown? _h;
            }
            """";
        var declared = new Dictionary<string, HashSet<string>>(StringComparer.Ordinal)
        {
            ["Interception"] = ["Table"],
            ["Outbound"] = ["Connector"],
            ["Configuration"] = ["RouteModel"],
            ["Kafka"] = ["KafkaSession"],
            ["Transport"] = ["PipeSocket"],
        };

        var found = SourceDependencies.Find("f.cs", Source, SourceDependencies.StripCommentsAndStrings(Source), declared)
            .Select(d => $"{d.Line} {d.From}->{d.To}").ToList();

        Assert.Equal(["2 Forwarding->Kafka", "3 Forwarding->Admin", "4 Forwarding->Http", "15 Forwarding->Interception", "17 Forwarding->Outbound", "20 Forwarding->Configuration"], found);
    }

    [Fact]
    public void Stripping_keeps_line_numbers_and_code_after_a_literal()
    {
        const string Source = "var a = \"x\\\"y\"; var b = 1;\n/* a\nb */ var c = '\\'';\nvar d = \"\"\"\n  raw \" \"\" \n  \"\"\"; var e = 2;";
        var stripped = SourceDependencies.StripCommentsAndStrings(Source);

        Assert.Equal(Source.Length, stripped.Length);
        Assert.Equal(Source.Split('\n').Length, stripped.Split('\n').Length);
        Assert.Contains("var b = 1;", stripped, StringComparison.Ordinal);
        Assert.Contains("var c =", stripped, StringComparison.Ordinal);
        Assert.Contains("; var e = 2;", stripped, StringComparison.Ordinal);
        Assert.DoesNotContain("raw", stripped, StringComparison.Ordinal);
        Assert.DoesNotContain("x", stripped.Split('\n')[0].Replace("var", "", StringComparison.Ordinal), StringComparison.Ordinal);
    }

    /// <summary>Whether <paramref name="from"/> leads to <paramref name="to"/> through namespaces of <paramref name="layer"/> only.</summary>
    private static bool Reaches(string from, string to, HashSet<(string From, string To)> edges, int layer)
    {
        var seen = new HashSet<string>(StringComparer.Ordinal) { from };
        var queue = new Queue<string>([from]);
        while (queue.TryDequeue(out var at))
        {
            if (at == to)
            {
                return true;
            }

            foreach (var (_, next) in edges.Where(e => e.From == at && Layers.GetValueOrDefault(e.To, -1) == layer))
            {
                if (seen.Add(next))
                {
                    queue.Enqueue(next);
                }
            }
        }

        return false;
    }

    private static (List<SourceDependency> Dependencies, List<string> Declared) ProductDependencies(bool checkTable = true)
    {
        var repository = ShippedConfigTests.RepositoryRoot();
        var product = Path.Combine(repository, "src", "BindProxy");
        var files = Directory.EnumerateFiles(product, "*.cs", SearchOption.AllDirectories)
            .Where(f => !Path.GetRelativePath(product, f).Split(Path.DirectorySeparatorChar).Any(part => part is "bin" or "obj"))
            .Order(StringComparer.Ordinal)
            .Select(f => (Path: Path.GetRelativePath(repository, f).Replace(Path.DirectorySeparatorChar, '/'), Original: File.ReadAllText(f)))
            .Select(f => (f.Path, f.Original, Stripped: SourceDependencies.StripCommentsAndStrings(f.Original)))
            .ToList();
        Assert.True(files.Count > 100, $"found only {files.Count} source files under {product}");

        var declared = SourceDependencies.Declarations(files.Select(f => f.Stripped));
        var dependencies = files.SelectMany(f => SourceDependencies.Find(f.Path, f.Original, f.Stripped, declared))
            .Where(d => declared.ContainsKey(d.To)) // BindProxy.Something that is no namespace of the product
            .ToList();
        if (checkTable)
        {
            Assert.All(declared.Keys, n => Assert.True(Layers.ContainsKey(n), $"namespace {n} has no layer"));
        }

        return (dependencies, [.. declared.Keys.Order(StringComparer.Ordinal)]);
    }

    /// <summary>The product's source files: path relative to <paramref name="product"/>, and the text with comments and strings blanked.</summary>
    private static List<(string Path, string Stripped)> ProductFiles(string product) =>
        [.. Directory.EnumerateFiles(product, "*.cs", SearchOption.AllDirectories)
            .Select(f => Path.GetRelativePath(product, f))
            .Where(f => !f.Split(Path.DirectorySeparatorChar).Any(part => part is "bin" or "obj"))
            .Order(StringComparer.Ordinal)
            .Select(f => (f, SourceDependencies.StripCommentsAndStrings(File.ReadAllText(Path.Combine(product, f)))))];

    [GeneratedRegex(@"^\s*(?:(?:public|internal|private|file|static|sealed|abstract|partial|readonly|ref)\s+)*(?:class|record|struct|interface|enum)\s+(?<name>\w+)", RegexOptions.Multiline)]
    private static partial Regex TypeDeclaration();
}
