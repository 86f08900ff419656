using System.Text;
using BindProxy.Configuration;

namespace BindProxy.Tests.Configuration;

/// <summary>Where a configuration file's JSON goes wrong, in lines and columns.</summary>
public sealed class JsonFileCheckTests
{
    private static string? Check(string text) => JsonFileCheck.Check(Encoding.UTF8.GetBytes(text));

    [Fact]
    public void What_the_configuration_reads_passes_comments_trailing_commas_and_a_byte_order_mark_included()
    {
        Assert.Null(Check("// routes\n{ \"BindProxy\": { /* none yet */ \"Routes\": { \"a\": { \"Listen\": [\"127.0.0.1:1\", \"127.0.0.1:2\",], }, }, }, }\n"));
        Assert.Null(JsonFileCheck.Check([.. Encoding.UTF8.Preamble, .. "{}"u8]));
    }

    [Fact]
    public void A_missing_comma_is_placed_at_its_line_and_column_counted_in_characters()
    {
        // "é" is two bytes in UTF-8 and one column.
        var problem = Check("{\n  \"BindProxy\": {\n    \"Routes\": { \"é\": { \"Listen\": \"x\" \"Upstream\": \"y\" } }\n  }\n}\n");
        Assert.Equal("is not valid JSON: line 3, column 38: '\"' is invalid after a value. Expected either ',', '}', or ']'.", problem);
    }

    [Fact]
    public void A_file_cut_short_says_so_at_its_end()
    {
        Assert.Equal("is not valid JSON: line 2, column 18: the file ends before the JSON does (3 object(s) or array(s) still open); was it cut short?",
            Check("{ \"BindProxy\": {\n  \"Routes\": { \"a\""));
    }

    [Theory]
    [InlineData("")]
    [InlineData("  \n\t ")]
    public void An_empty_file_is_called_empty(string text) => Assert.StartsWith("is empty; it must hold a JSON object", Check(text), StringComparison.Ordinal);

    [Fact]
    public void Only_an_object_will_do() =>
        Assert.Equal("is not a JSON object: line 1, column 2: found an array; it must hold a JSON object such as { \"BindProxy\": { \"Routes\": { ... } } }", Check(" [1]"));

    [Fact]
    public void A_key_written_twice_is_placed_at_the_second()
    {
        Assert.Equal("has a key twice: line 3, column 3: \"listen\" is already set in the same object (keys are case-insensitive)",
            Check("{ \"a\": {\n  \"Listen\": 1,\n  \"listen\": 2 },\n  \"b\": { \"Listen\": 3 } }"));
    }

    [Fact]
    public void Text_after_the_object_is_an_error() =>
        Assert.StartsWith("is not valid JSON: line 1, column 4: ", Check("{} {}"), StringComparison.Ordinal);
}
