using BindProxy.Addressing;
using BindProxy.Configuration;
using BindProxy.Tests.Cli;
using BindProxy.Tests.Infrastructure;
using BindProxy.Transport;

namespace BindProxy.Tests.Configuration;

/// <summary><c>BindProxy:Engine</c> and <c>--engine</c>: validated where they are written, and the engine in use is said at startup.</summary>
public sealed class EngineSettingTests
{
    private static readonly TimeSpan Prompt = TimeSpan.FromSeconds(10);

    private static RouteConfig Route() => new() { Name = "r", Listen = "127.0.0.1:0", Upstream = "127.0.0.1:9", Source = "127.0.0.2" };

    private static Task<ValidationResult> ValidateAsync(string? engine) =>
        new ConfigValidator(new SourceAddressProbe()).ValidateAsync(new ProxyConfig { Engine = engine, Routes = [Route()] }, CancellationToken.None);

    [Fact]
    public async Task A_value_that_is_no_engine_is_an_error_naming_the_key_and_the_engines()
    {
        var result = await ValidateAsync("epoll");

        var error = Assert.Single(result.Errors);
        Assert.Equal("BindProxy:Engine: 'epoll' is not an engine; expected auto, relay or pipes", error.ToString());
    }

    [Theory]
    [InlineData(null)]
    [InlineData("Auto")]
    [InlineData("auto")]
    public async Task Auto_picks_the_relay_engine_where_it_runs_and_pipes_elsewhere(string? engine)
    {
        var result = await ValidateAsync(engine);

        Assert.True(result.IsValid, string.Join("\n", result.Errors));
        Assert.Equal(EngineSettings.RelayRuns ? EngineSetting.Relay : EngineSetting.Pipes, result.Model!.Engine);
    }

    [Fact]
    public async Task Pipes_may_be_chosen_anywhere_and_relay_only_where_it_runs()
    {
        var pipes = await ValidateAsync("PIPES");
        Assert.Equal(EngineSetting.Pipes, pipes.Model!.Engine);

        var relay = await ValidateAsync("relay");
        if (EngineSettings.RelayRuns)
        {
            Assert.Equal(EngineSetting.Relay, relay.Model!.Engine);
            Assert.True(ForwardingEngine.For(relay.Model.Engine).IsRelay);
        }
        else
        {
            Assert.Contains("BindProxy:Engine: the relay engine runs on Linux x64 and arm64 only", Assert.Single(relay.Errors).ToString(), StringComparison.Ordinal);
        }
    }

    [Theory]
    [MemberData(nameof(Engines.Tcp), MemberType = typeof(Engines))]
    public async Task The_startup_log_names_the_engine_in_use(string engine)
    {
        await using var upstream = TestServer.Echo();
        await using var proxy = await TestProxy.StartAsync(upstream.Address, engine: engine);

        await proxy.Logs.WaitForAsync(Prompt, $"Forwarding engine for Tcp routes: {engine} (");

        // The pipe engine starts no relay loops at all.
        Assert.Equal(engine == "relay", proxy.Services.GetService(typeof(BindProxy.Transport.Linux.RelayEngine)) is not null);
    }

    [Fact]
    public async Task The_engine_option_is_validated_and_its_choice_named_at_startup()
    {
        var (exit, _, err) = await BindProxyCli.RunAsync(BindProxyCli.TempDir(), "check", "--listen", "127.0.0.1:0", "--upstream", "127.0.0.1:9", "--source", "127.0.0.2", "--engine", "fast");
        Assert.Equal(1, exit);
        Assert.Contains("--engine: 'fast' is not an engine; expected auto, relay or pipes", err, StringComparison.Ordinal);

        var (ok, output, _) = await BindProxyCli.RunAsync(BindProxyCli.TempDir(), "check", "--listen", "127.0.0.1:0", "--upstream", "127.0.0.1:9", "--source", "127.0.0.2", "--engine", "Pipes");
        Assert.Equal(0, ok);
        Assert.Contains("forwarding engine for Tcp routes: pipes", output, StringComparison.Ordinal);

        await using var upstream = TestServer.Echo();
        await using var proxy = ProxyProcess.Start(BindProxyCli.TempDir(), "--listen", "127.0.0.1:0", "--upstream", upstream.Address, "--source", "127.0.0.2", "--engine", "pipes");
        await proxy.WaitForLineAsync("Forwarding engine for Tcp routes: pipes (", Prompt);
    }
}
