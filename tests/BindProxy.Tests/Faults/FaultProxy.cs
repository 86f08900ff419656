using System.Net;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json;
using BindProxy.Addressing;
using BindProxy.Configuration;
using BindProxy.Hosting;
using BindProxy.Tests.Infrastructure;
using Microsoft.Extensions.DependencyInjection;

namespace BindProxy.Tests.Faults;

/// <summary>A real proxy with its fault API (toxiproxy v2) on 127.0.0.1 (a free port), and an HTTP client for it.</summary>
internal sealed class FaultProxy : IAsyncDisposable
{
    private FaultProxy(TestProxy proxy, IPEndPoint api)
    {
        Proxy = proxy;
        Api = api;
        Http = new HttpClient { BaseAddress = new Uri($"http://{api}/"), Timeout = TimeSpan.FromSeconds(10) };
    }

    public TestProxy Proxy { get; }

    public IPEndPoint Api { get; }

    public HttpClient Http { get; }

    /// <summary>One Tcp route named "test" to <paramref name="upstream"/>, on the given engine.</summary>
    public static Task<FaultProxy> StartAsync(string upstream, string? engine = null, bool admin = false) =>
        StartAsync(new ProxyConfig
        {
            Engine = engine,
            Routes = [new RouteConfig { Name = "test", Listen = "127.0.0.1:0", Upstream = upstream, Source = "127.0.0.2" }],
            Faults = new FaultsConfig { Listen = "127.0.0.1:0" },
            Admin = admin ? new AdminConfig { Listen = "127.0.0.1:0" } : null,
        });

    public static async Task<FaultProxy> StartAsync(ProxyConfig config)
    {
        var proxy = await TestProxy.StartAsync(config);
        var api = proxy.Services.GetRequiredService<FaultEndpoint>().BoundEndPoint;
        Assert.NotNull(api);
        return new FaultProxy(proxy, api);
    }

    /// <summary>A proxy started from a configuration file (with a <c>Faults</c> section) that it watches for edits.</summary>
    public static async Task<FaultProxy> StartFromFileAsync(string path)
    {
        var proxy = await TestProxy.StartFromFileAsync(path);
        var api = proxy.Services.GetRequiredService<FaultEndpoint>().BoundEndPoint;
        Assert.NotNull(api);
        return new FaultProxy(proxy, api);
    }

    public async Task<(HttpStatusCode Status, JsonElement Body)> SendAsync(HttpMethod method, string path, string? json = null)
    {
        using var request = new HttpRequestMessage(method, path);
        if (json is not null)
        {
            request.Content = new StringContent(json, Encoding.UTF8, "application/json");
        }

        using var response = await Http.SendAsync(request);
        var text = await response.Content.ReadAsStringAsync();
        return (response.StatusCode, text.Length == 0 ? default : JsonDocument.Parse(text).RootElement.Clone());
    }

    /// <summary>Adds a toxic to route "test" and checks it was taken.</summary>
    public async Task AddToxicAsync(string json, string route = "test")
    {
        var (status, body) = await SendAsync(HttpMethod.Post, $"proxies/{route}/toxics", json);
        Assert.True(status == HttpStatusCode.OK, $"{status}: {body}");
    }

    public async ValueTask DisposeAsync()
    {
        Http.Dispose();
        await Proxy.DisposeAsync();
    }
}
