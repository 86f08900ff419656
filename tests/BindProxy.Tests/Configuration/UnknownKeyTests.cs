using BindProxy.Addressing;
using BindProxy.Configuration;
using Microsoft.Extensions.Configuration;

namespace BindProxy.Tests.Configuration;

/// <summary>Keys nothing reads, at every level of the BindProxy and Admin sections and at the top.</summary>
public sealed class UnknownKeyTests
{
    private static async Task<IReadOnlyList<string>> ErrorsAsync(Dictionary<string, string?> keys)
    {
        var configuration = new ConfigurationBuilder().AddInMemoryCollection(keys).Build();
        var result = await new ConfigValidator(new SourceAddressProbe()).ValidateAsync(ConfigReader.Read(configuration), CancellationToken.None);
        return [.. result.Errors.Select(e => e.ToString())];
    }

    private static Dictionary<string, string?> Good() => new()
    {
        ["BindProxy:Routes:r:Listen"] = "127.0.0.1:19092",
        ["BindProxy:Routes:r:Upstream"] = "127.0.0.1:9092",
        ["BindProxy:Routes:r:Source"] = "127.0.0.2",
    };

    [Fact]
    public async Task Typos_above_the_route_level_are_reported_with_the_name_meant()
    {
        var keys = Good();
        keys["BindProxy:Rotues:r:Listen"] = "127.0.0.1:19093";
        keys["BindProxy:DrainTimout"] = "00:00:05";
        keys["Admn:Listen"] = "127.0.0.1:9901";
        keys["Serilg:MinimumLevel"] = "Debug";
        keys["Admin:Listen"] = "127.0.0.1:9901";
        keys["Admin:AllowNonLoopbak"] = "true";

        Assert.Equal(
        [
            "Admn: unknown section; did you mean Admin?",
            "Serilg: unknown section; did you mean Serilog?",
            "BindProxy:DrainTimout: unknown key; did you mean DrainTimeout?",
            "BindProxy:Rotues: unknown key; did you mean Routes?",
            "Admin:AllowNonLoopbak: unknown field; did you mean AllowNonLoopback?",
        ], await ErrorsAsync(keys));
    }

    [Fact]
    public async Task BindProxy_keys_at_the_top_and_route_fields_above_a_route_are_told_where_they_go()
    {
        var keys = Good();
        keys["Routes:r:Listen"] = "127.0.0.1:19093";
        keys["BindProxy:Listen"] = "127.0.0.1:19094";
        keys["BindProxy:Whatever"] = "1";

        Assert.Equal(
        [
            "Routes: unknown section; Routes goes inside the BindProxy section (BindProxy:Routes)",
            "BindProxy:Listen: unknown key; route fields such as Listen go inside a route, BindProxy:Routes:NAME:Listen",
            "BindProxy:Whatever: unknown key; known keys are Routes, DrainTimeout, FlushTimeout, StallTimeout, Engine",
        ], await ErrorsAsync(keys));
    }

    [Fact]
    public async Task Other_top_level_sections_are_left_alone()
    {
        // The file may be shared with other tools, and BINDPROXY_ variables such as
        // BINDPROXY_REQUIRE_ALL (the test suite's own) arrive as top-level keys.
        var keys = Good();
        keys["Logging:LogLevel:Default"] = "Debug";
        keys["REQUIRE_ALL"] = "1";
        keys["$schema"] = "https://example.invalid/schema.json";
        Assert.Empty(await ErrorsAsync(keys));
    }

    [Fact]
    public async Task A_route_field_typo_names_the_field_meant_and_an_unrelated_key_lists_them_all()
    {
        var keys = Good();
        keys["BindProxy:Routes:r:Upsteam"] = "127.0.0.1:9093";
        keys["BindProxy:Routes:r:AssignmentIdelTimeout"] = "00:01:00";
        keys["BindProxy:Routes:r:Colour"] = "blue";

        var errors = await ErrorsAsync(keys);
        Assert.Equal(3, errors.Count);
        Assert.Contains("route 'r': AssignmentIdelTimeout: unknown field; did you mean AssignmentIdleTimeout?", errors);
        Assert.Contains("route 'r': Upsteam: unknown field; did you mean Upstream?", errors);
        Assert.Contains(errors, e => e.StartsWith("route 'r': Colour: unknown field; known fields are Listen, Upstream, Source, Protocol,", StringComparison.Ordinal));
    }

    [Fact]
    public async Task A_section_where_a_value_belongs_is_reported()
    {
        var keys = Good();
        keys["BindProxy:Routes:r:ConnectTimeout:Seconds"] = "5";
        keys["BindProxy:Routes:r:Source"] = null;
        keys["BindProxy:Routes:r:Source:0"] = "127.0.0.2";
        keys["BindProxy:Routes:r:Source:1:Address"] = "127.0.0.3";

        var errors = await ErrorsAsync(keys);
        Assert.Contains("route 'r': ConnectTimeout: expected a single value, found an object or array", errors);
        Assert.Contains("route 'r': Source: expected a value or an array of values, found an object or array", errors);
    }

    [Theory]
    [InlineData("Admn", "Admin")]
    [InlineData("Rotues", "Routes")]
    [InlineData("DrainTimout", "DrainTimeout")]
    [InlineData("bindproxi", "BindProxy")]
    [InlineData("Sorce", "Source")]
    [InlineData("Logging", null)]
    [InlineData("Port", null)]
    public void Near_misses_are_suggested_and_other_words_are_not(string typed, string? meant)
    {
        string[] known = ["BindProxy", "Admin", "Serilog", "Routes", "DrainTimeout", "Listen", "Source", "AllowNonLoopback"];
        Assert.Equal(meant, KeySuggestions.Closest(typed, known));
    }
}
