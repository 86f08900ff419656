using BindProxy.Forwarding;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Connections;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.Extensions.DependencyInjection;

namespace BindProxy.Http;

/// <summary>
/// Wires Http routes into the host: one Kestrel endpoint fed by the routes' own listeners (see
/// <see cref="HttpRouteConnections"/>), with HTTP/1.1 and cleartext HTTP/2, and a middleware that
/// forwards the requests of connections that came in on a route (requests on any other endpoint
/// pass on untouched).
/// </summary>
internal static class HttpRouteHosting
{
    public static IServiceCollection AddHttpRoutes(this IServiceCollection services)
    {
        services.AddHttpForwarder();
        services.AddSingleton<HttpRouteClients>();
        services.AddSingleton<HttpRouteProxy>();
        services.AddSingleton<CleartextHttp2>();
        services.AddSingleton<IConnectionListenerFactory, CleartextHttp2.PipelineTransport>();
        services.AddSingleton<HttpRouteConnections>();
        services.AddSingleton<IConnectionListenerFactory>(sp => sp.GetRequiredService<HttpRouteConnections>());
        services.AddSingleton<IDrainSource>(sp => sp.GetRequiredService<HttpRouteConnections>());
        return services;
    }

    /// <summary>Adds the endpoint every Http route's connections arrive on, whether the routes exist yet or come with a reload.</summary>
    public static void ListenHttpRoutes(this KestrelServerOptions kestrel)
    {
        var connections = kestrel.ApplicationServices.GetRequiredService<HttpRouteConnections>();
        var http2 = kestrel.ApplicationServices.GetRequiredService<CleartextHttp2>();
        http2.Listen(kestrel);
        kestrel.Listen(new HttpRouteEndPoint(), listen =>
        {
            // HTTP/1.1 here; CleartextHttp2 hands HTTP/2 connections over (see there why).
            listen.Protocols = HttpProtocols.Http1;
            listen.Use(connections.Track);
            listen.Use(http2.Middleware(kestrel.Limits.RequestHeadersTimeout));
        });
    }

    /// <summary>Adds the forwarding middleware.</summary>
    public static WebApplication UseHttpRoutes(this WebApplication app)
    {
        var proxy = app.Services.GetRequiredService<HttpRouteProxy>();
        app.Use(next => context =>
            context.Features.Get<HttpRouteFeature>() is { } route ? proxy.ForwardAsync(context, route.Route) : next(context));
        return app;
    }
}
