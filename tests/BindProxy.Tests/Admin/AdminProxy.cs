using System.Net;
using System.Text.Json;
using BindProxy.Addressing;
using BindProxy.Admin;
using BindProxy.Configuration;
using BindProxy.Tests.Infrastructure;
using Microsoft.Extensions.DependencyInjection;

namespace BindProxy.Tests.Admin;

/// <summary>A real proxy with its admin endpoint on 127.0.0.1 (a free port), and an HTTP client for it.</summary>
internal sealed class AdminProxy : IAsyncDisposable
{
    public static readonly TimeSpan Timeout = TimeSpan.FromSeconds(10);

    private AdminProxy(TestProxy proxy, IPEndPoint admin)
    {
        Proxy = proxy;
        Admin = admin;
        Http = new HttpClient { BaseAddress = new Uri($"http://{admin}/"), Timeout = Timeout };
    }

    public TestProxy Proxy { get; }

    public IPEndPoint Admin { get; }

    public Uri BaseAddress => Http.BaseAddress!;

    public HttpClient Http { get; }

    public static Task<AdminProxy> StartAsync(params RouteConfig[] routes) => StartAsync(null, routes);

    /// <param name="services">Registrations made last, which replace the host's own.</param>
    public static async Task<AdminProxy> StartAsync(Action<IServiceCollection>? services, params RouteConfig[] routes)
    {
        var config = new ProxyConfig { Routes = routes, Admin = new AdminConfig { Listen = "127.0.0.1:0" } };
        var result = await new ConfigValidator(new SourceAddressProbe()).ValidateAsync(config, CancellationToken.None);
        Assert.True(result.IsValid, string.Join("\n", result.Errors));
        return await StartAsync(result.Model!, services);
    }

    /// <summary>Starts <paramref name="model"/> as given (unvalidated routes allowed), with the admin endpoint added.</summary>
    public static async Task<AdminProxy> StartAsync(ProxyModel model, Action<IServiceCollection>? services = null)
    {
        if (model.Admin is null)
        {
            model = new ProxyModel(model.Routes, model.DrainTimeout) { Admin = new AdminModel(new IPEndPoint(IPAddress.Loopback, 0), AllowNonLoopback: false) };
        }

        var proxy = await TestProxy.StartAsync(model, services: services);
        var bound = proxy.Services.GetRequiredService<AdminEndpoint>().BoundEndPoint;
        Assert.NotNull(bound);
        return new AdminProxy(proxy, bound);
    }

    public static RouteConfig Route(string name, TestServer upstream, string source = "127.0.0.2") =>
        new() { Name = name, Listen = "127.0.0.1:0", Upstream = upstream.Address, Source = source };

    public async Task<JsonElement> GetJsonAsync(string path)
    {
        using var response = await Http.GetAsync(path).WaitAsync(Timeout);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal("application/json", response.Content.Headers.ContentType?.MediaType);
        using var document = JsonDocument.Parse(await response.Content.ReadAsStringAsync().WaitAsync(Timeout));
        return document.RootElement.Clone();
    }

    public async Task<string> GetTextAsync(string path) => await Http.GetStringAsync(path).WaitAsync(Timeout);

    /// <summary>Polls <paramref name="path"/> until <paramref name="done"/> holds for its JSON.</summary>
    public Task<JsonElement> WaitForJsonAsync(string path, Func<JsonElement, bool> done) =>
        Poll.UntilAsync(() => GetJsonAsync(path), done, $"{path} to reach the expected state", Timeout);

    public async ValueTask DisposeAsync()
    {
        Http.Dispose();
        await Proxy.DisposeAsync();
    }
}
