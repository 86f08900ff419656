using System.Net;
using BindProxy.Configuration;
using BindProxy.Transport;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Connections;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace BindProxy.Http;

/// <summary>
/// Wires Http routes into the host: plain Kestrel HTTP endpoints on the stock socket transport,
/// each tagging its connections with the route's name, and a middleware that forwards the
/// requests of tagged connections (requests on any other endpoint pass on untouched).
/// </summary>
internal static class HttpRouteHosting
{
    public static IServiceCollection AddHttpRoutes(this IServiceCollection services)
    {
        services.AddHttpForwarder();
        services.AddSingleton<HttpRouteClients>();
        services.AddSingleton<HttpRouteProxy>();
        services.AddSingleton<HttpListeners>();
        services.AddSingleton<CleartextHttp2>();
        services.AddSingleton<IConnectionListenerFactory, CleartextHttp2.PipelineTransport>();
        return services;
    }

    /// <summary>Listens on <paramref name="endpoint"/> with HTTP/1.1 and cleartext HTTP/2 for <paramref name="route"/>.</summary>
    public static void ListenHttpRoute(this KestrelServerOptions kestrel, RouteModel route, IPEndPoint endpoint)
    {
        var listeners = kestrel.ApplicationServices.GetRequiredService<HttpListeners>();
        var http2 = kestrel.ApplicationServices.GetRequiredService<CleartextHttp2>();
        if (listeners.Count == 0)
        {
            http2.Listen(kestrel);
        }

        var feature = new HttpRouteFeature(route.Name);
        kestrel.Listen(endpoint, listen =>
        {
            // HTTP/1.1 here; CleartextHttp2 hands HTTP/2 connections over (see there why).
            listen.Protocols = HttpProtocols.Http1;
            listen.Use(next => connection =>
            {
                connection.Features.Set(feature);
                return next(connection);
            });
            listen.Use(http2.Middleware(kestrel.Limits.RequestHeadersTimeout));
            listeners.Add(route.Name, listen);
        });
    }

    /// <summary>Adds the forwarding middleware, and publishes the bound Http endpoints once the server runs.</summary>
    public static WebApplication UseHttpRoutes(this WebApplication app)
    {
        var proxy = app.Services.GetRequiredService<HttpRouteProxy>();
        app.Use(next => context =>
            context.Features.Get<HttpRouteFeature>() is { } route ? proxy.ForwardAsync(context, route.Route) : next(context));

        var lifetime = app.Services.GetRequiredService<IHostApplicationLifetime>();
        var listeners = app.Services.GetRequiredService<HttpListeners>();
        var registry = app.Services.GetRequiredService<ListenerRegistry>();
        lifetime.ApplicationStarted.Register(() => listeners.Publish(registry));
        lifetime.ApplicationStopping.Register(() => listeners.Unpublish(registry));
        return app;
    }
}

/// <summary>Marks a connection as accepted on an Http route's listener.</summary>
internal sealed record HttpRouteFeature(string Route);

/// <summary>
/// Kestrel's listen options of Http routes. Kestrel writes the bound endpoint (the real port for
/// port 0) back into them when it binds; from then on they go into <see cref="ListenerRegistry"/>
/// like the proxy transport's listeners.
/// </summary>
internal sealed partial class HttpListeners(ILogger<HttpListeners> logger)
{
    private readonly List<(string Route, ListenOptions Options)> _listeners = [];
    private readonly List<RouteEndPoint> _published = [];
    private readonly Lock _lock = new();

    public int Count
    {
        get
        {
            lock (_lock)
            {
                return _listeners.Count;
            }
        }
    }

    public void Add(string route, ListenOptions options)
    {
        lock (_lock)
        {
            _listeners.Add((route, options));
        }
    }

    public void Publish(ListenerRegistry registry)
    {
        lock (_lock)
        {
            foreach (var (route, options) in _listeners)
            {
                var endpoint = new RouteEndPoint(route, options.IPEndPoint!);
                registry.Add(endpoint);
                _published.Add(endpoint);
                Log.Listening(logger, route, endpoint.Address);
            }
        }
    }

    public void Unpublish(ListenerRegistry registry)
    {
        lock (_lock)
        {
            foreach (var endpoint in _published)
            {
                registry.Remove(endpoint);
            }

            _published.Clear();
        }
    }

    private static partial class Log
    {
        [LoggerMessage(620, LogLevel.Information, "Route {Route} listening on {Endpoint} (HTTP/1.1 and HTTP/2)")]
        public static partial void Listening(ILogger logger, string route, IPEndPoint endpoint);
    }
}
