using System.Text;
using BindProxy.Configuration;

namespace BindProxy.Tests.Configuration;

/// <summary>
/// README's configuration tables are made from the settings' definitions
/// (<see cref="ConfigFieldAttribute"/>): each table sits between two markers and must read
/// exactly as <see cref="Render"/> makes it, so a setting added, renamed, re-described or given
/// another default without its README row (or the other way round) fails here. Run with
/// <c>BINDPROXY_WRITE_README=1</c> to write the tables into README.md instead.
/// </summary>
public sealed class ReadmeFieldTablesTests
{
    private const string WriteVariable = "BINDPROXY_WRITE_README";

    /// <summary>The generated tables, by the name their markers carry.</summary>
    public static TheoryData<string> Tables() => ["route fields", "other keys"];

    [Theory]
    [MemberData(nameof(Tables))]
    public void The_readme_table_is_the_one_the_definitions_make(string name)
    {
        var path = Path.Combine(ShippedConfigTests.RepositoryRoot(), "README.md");
        var readme = File.ReadAllText(path);
        var (begin, end) = (Begin(name), $"<!-- end of {name} -->");
        int start = readme.IndexOf(begin, StringComparison.Ordinal);
        int stop = readme.IndexOf(end, StringComparison.Ordinal);
        Assert.True(start >= 0 && stop > start, $"README.md has no table between\n{begin}\nand\n{end}");

        var written = readme[(start + begin.Length)..stop];
        var expected = "\n" + Render(name);
        if (written != expected && Environment.GetEnvironmentVariable(WriteVariable) == "1")
        {
            File.WriteAllText(path, readme[..(start + begin.Length)] + expected + readme[stop..]);
            return;
        }

        Assert.True(written == expected,
            $"README.md's {name} table differs from the definitions; run the tests with {WriteVariable}=1 to rewrite it, or paste:\n{expected}");
    }

    [Fact]
    public void Every_setting_has_a_row()
    {
        var rows = Render("route fields") + Render("other keys");
        foreach (var field in FieldDefinitionTests.Tables.SelectMany(t => t.All))
        {
            var key = field.Path.StartsWith("BindProxy:", StringComparison.Ordinal) || field.Path.StartsWith("Admin:", StringComparison.Ordinal) || field.Path.Contains(':', StringComparison.Ordinal)
                ? field.Path
                : field.Name;
            Assert.Contains($"\n| `{key}` | ", rows, StringComparison.Ordinal);
        }
    }

    private static string Begin(string name) => $"<!-- {name}: made from the [ConfigField] definitions in src/BindProxy/Configuration; tests/BindProxy.Tests/Configuration/ReadmeFieldTablesTests.cs checks it -->";

    /// <summary>A table as README shows it: one row per setting, in the order of its record.</summary>
    internal static string Render(string name) => name switch
    {
        "route fields" => Table("Field", RouteConfig.Fields.All.Select(f => (f.Name, f))),
        "other keys" => Table("Key", new[] { ProxyConfig.Fields, AdminConfig.Fields, FaultsConfig.Fields, CaptureConfig.Fields, InterceptConfig.Fields, TlsConfig.Fields, ListenTlsConfig.Fields }.SelectMany(t => t.All).Select(f => (f.Path, f))),
        _ => throw new ArgumentOutOfRangeException(nameof(name), name, "no such table"),
    };

    private static string Table(string keyHeader, IEnumerable<(string Key, ConfigField Field)> rows)
    {
        var table = new StringBuilder();
        table.Append("| ").Append(keyHeader).Append(" | Meaning | Forms | Default |\n");
        table.Append("|---|---|---|---|\n");
        foreach (var (key, field) in rows)
        {
            var scope = field.OnlyFor is { } protocol ? $"{protocol} routes only. " : "";
            var reload = field.Reload == FieldReload.Restart ? " Takes effect at the next restart." : "";
            var absent = field.Default is { } value ? $"`{value}`" : field.Unset ?? "required";
            table.Append($"| `{key}` | {scope}{field.Doc}{reload} | {field.Forms} | {absent} |\n");
        }

        return table.ToString();
    }
}
