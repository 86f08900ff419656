using System.Collections.Concurrent;
using BindProxy.Configuration;
using BindProxy.Forwarding;
using BindProxy.Transport;
using Microsoft.AspNetCore.Connections;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace BindProxy.Kafka.Brokers;

/// <summary>One <see cref="BrokerDirectory"/> per Kafka bootstrap route; closes their listeners at shutdown.</summary>
internal sealed class BrokerDirectories(
    SocketTransportFactory transport,
    RouteTable routes,
    IServiceProvider services,
    ILogger<BrokerDirectory> logger) : IHostedService, IAsyncDisposable
{
    private readonly ConcurrentDictionary<string, BrokerDirectory> _directories = new(StringComparer.Ordinal);

    public IReadOnlyDictionary<string, BrokerDirectory> All => _directories;

    /// <summary>The directory of <paramref name="route"/>'s cluster (a broker route shares its bootstrap's).</summary>
    public BrokerDirectory For(RouteModel route)
    {
        var root = route.Root;
        return _directories.GetOrAdd(root.Name, _ =>
        {
            var handler = (ProxyConnectionHandler)services.GetService(typeof(ProxyConnectionHandler))!;
            return new BrokerDirectory(root, transport, handler.OnConnectedAsync, routes, logger);
        });
    }

    public Task StartAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    public async Task StopAsync(CancellationToken cancellationToken) => await DisposeAsync().ConfigureAwait(false);

    public async ValueTask DisposeAsync()
    {
        foreach (var directory in _directories.Values)
        {
            await directory.DisposeAsync().ConfigureAwait(false);
        }

        _directories.Clear();
    }
}
