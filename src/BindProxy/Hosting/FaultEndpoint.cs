using System.Net;
using BindProxy.Addressing;
using BindProxy.Configuration;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace BindProxy.Hosting;

/// <summary>The fault API's own Kestrel listener (<c>Faults:Listen</c>); its requests go to <see cref="FaultApi"/> and nowhere else.</summary>
internal sealed class FaultEndpoint(FaultsModel model)
{
    private ListenOptions? _listenOptions;

    public FaultsModel Model => model;

    /// <summary>The address actually bound (its real port when the configured one is 0); null before start.</summary>
    public IPEndPoint? BoundEndPoint => _listenOptions?.IPEndPoint is { Port: not 0 } bound ? bound : null;

    public static void Add(WebApplicationBuilder builder, FaultsModel model)
    {
        var endpoint = new FaultEndpoint(model);
        builder.Services.AddSingleton(endpoint);
        builder.Services.AddSingleton<FaultApi>();
        builder.WebHost.ConfigureKestrel(kestrel => kestrel.Listen(model.Listen, listen =>
        {
            listen.Protocols = HttpProtocols.Http1;
            listen.Use(next => connection =>
            {
                connection.Features.Set(FaultConnection.Instance);
                return next(connection);
            });
            endpoint._listenOptions = listen;
        }));
    }

    /// <summary>Answers the fault listener's requests; goes before every other part of the HTTP pipeline.</summary>
    public static void Map(WebApplication app)
    {
        var endpoint = app.Services.GetRequiredService<FaultEndpoint>();
        var api = app.Services.GetRequiredService<FaultApi>();
        app.Use((context, next) => context.Features.Get<FaultConnection>() is null ? next(context) : api.HandleAsync(context));

        var logger = app.Services.GetRequiredService<ILogger<FaultApi>>();
        var own = app.Services.GetRequiredService<OwnListeners>();
        app.Lifetime.ApplicationStarted.Register(() =>
        {
            if (endpoint.BoundEndPoint is not { } bound)
            {
                return;
            }

            // A listener of this process: no route may connect to it.
            own.Add(bound, "the fault API");
            FaultApi.LogListening(logger, $"http://{bound}/", endpoint.Model.IsLoopback);
        });
    }

    /// <summary>Marks a connection accepted on the fault listener.</summary>
    private sealed class FaultConnection
    {
        public static readonly FaultConnection Instance = new();
    }
}
