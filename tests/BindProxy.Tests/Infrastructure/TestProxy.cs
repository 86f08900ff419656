using System.Net;
using BindProxy.Addressing;
using BindProxy.Configuration;
using BindProxy.Faults;
using BindProxy.Forwarding;
using BindProxy.Hosting;
using BindProxy.Transport;
using Microsoft.AspNetCore.Builder;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace BindProxy.Tests.Infrastructure;

/// <summary>A real proxy host on loopback, started from route configs, with its log lines collected.</summary>
public sealed class TestProxy : IAsyncDisposable
{
    private readonly WebApplication _app;

    private TestProxy(WebApplication app, LogCollector logs)
    {
        _app = app;
        Logs = logs;
    }

    public LogCollector Logs { get; }

    /// <summary>The fault API's rules for a toxic, as the CLI and the host check a route's <c>Faults</c> with.</summary>
    internal static ToxicCheck Toxics { get; } = new(FaultApi.CheckText);

    internal IServiceProvider Services => _app.Services;

    internal ConnectionRegistry Connections => _app.Services.GetRequiredService<ConnectionRegistry>();

    /// <summary>Connections of the route served now under <paramref name="route"/>, connecting ones included.</summary>
    public int CountOf(string route = "test") =>
        _app.Services.GetRequiredService<RouteTable>().All.FirstOrDefault(r => r.Name == route)?.Connections ?? 0;

    /// <summary>The bound endpoints of <paramref name="route"/> (actual ports).</summary>
    public IReadOnlyList<IPEndPoint> Endpoints(string route = "test") =>
        _app.Services.GetRequiredService<ListenerRegistry>().For(route);

    public IPEndPoint Endpoint(string route = "test") => Endpoints(route)[0];

    /// <summary>Starts a proxy with one route named "test".</summary>
    /// <param name="engine">The forwarding engine (<c>BindProxy:Engine</c>); auto when null.</param>
    internal static Task<TestProxy> StartAsync(string upstream, string source = "127.0.0.2", string listen = "127.0.0.1:0", string? connectTimeout = null, string protocol = "Tcp", string? engine = null) =>
        StartAsync(new ProxyConfig { Engine = engine, Routes = [new RouteConfig { Name = "test", Listen = listen, Upstream = upstream, Source = source, ConnectTimeout = connectTimeout, Protocol = protocol }] });

    /// <summary>Starts a proxy from a whole configuration (routes, engine, drain timeout).</summary>
    internal static async Task<TestProxy> StartAsync(ProxyConfig config, TransportOptions? transport = null, Action<IServiceCollection>? services = null)
    {
        var result = await new ConfigValidator(new SourceAddressProbe(), toxics: Toxics).ValidateAsync(config, CancellationToken.None);
        Assert.True(result.IsValid, string.Join("\n", result.Errors));
        return await StartAsync(result.Model!, transport, services: services);
    }

    internal static Task<TestProxy> StartAsync(params RouteConfig[] routes) => StartAsync(null, routes);

    /// <param name="services">Registrations made last, which replace the host's own.</param>
    internal static async Task<TestProxy> StartAsync(Action<IServiceCollection>? services, params RouteConfig[] routes)
    {
        var result = await new ConfigValidator(new SourceAddressProbe(), toxics: Toxics).ValidateAsync(new ProxyConfig { Routes = routes }, CancellationToken.None);
        Assert.True(result.IsValid, string.Join("\n", result.Errors));
        return await StartAsync(result.Model!, services: services);
    }

    /// <summary>Starts a proxy from a configuration file that it watches for edits, as the CLI does.</summary>
    internal static async Task<TestProxy> StartFromFileAsync(string path)
    {
        var configuration = ConfigLoader.Load(path, required: true, reloadOnChange: true, out var error);
        Assert.Null(error);
        var result = await new ConfigValidator(new SourceAddressProbe(), toxics: Toxics).ValidateAsync(ConfigReader.Read(configuration), CancellationToken.None);
        Assert.True(result.IsValid, string.Join("\n", result.Errors));
        return await StartAsync(result.Model!, reload: configuration);
    }

    /// <param name="services">Registrations made last, which replace the host's own (a smaller descriptor budget, fault injection).</param>
    internal static async Task<TestProxy> StartAsync(ProxyModel model, TransportOptions? transport = null, IConfiguration? reload = null,
        Action<IServiceCollection>? services = null)
    {
        var logs = new LogCollector();
        var app = ProxyHost.Build(model, new ConfigurationBuilder().Build(), reload: reload, configure: builder =>
        {
            builder.Logging.ClearProviders().AddProvider(logs).SetMinimumLevel(LogLevel.Debug);
            if (transport is not null)
            {
                builder.Services.AddSingleton(transport);
            }

            services?.Invoke(builder.Services);
        });
        await app.StartAsync().WaitAsync(TimeSpan.FromSeconds(10));
        return new TestProxy(app, logs);
    }

    public async ValueTask DisposeAsync()
    {
        using var stop = new CancellationTokenSource(TimeSpan.FromSeconds(2));
        try
        {
            await _app.StopAsync(stop.Token);
        }
        catch (OperationCanceledException)
        {
        }

        await _app.DisposeAsync();
    }
}
