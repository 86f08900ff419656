using BindProxy.Addressing;
using BindProxy.Faults;
using BindProxy.Forwarding;
using BindProxy.Kafka.Faults;
using BindProxy.Kafka.Brokers;
using BindProxy.Kafka.Conversation;
using BindProxy.Transport;
using Microsoft.Extensions.Logging;

namespace BindProxy.Kafka;

/// <summary>
/// Forwards the connections of Kafka routes for the forwarding path: one <see cref="KafkaSession"/>
/// per connection, told the broker addresses through its route family's <see cref="BrokerDirectories"/>.
/// </summary>
internal sealed class KafkaForwarder(BrokerDirectories brokers, KafkaConversations conversations, ProxyMetrics metrics, FaultTable faults, ProcessLookup processes, ILogger<KafkaSession> logger) : IKafkaForwarder
{
    public Task<string?> PeekClientIdAsync(PipeSocket client, TimeSpan timeout, CancellationToken cancellationToken) =>
        KafkaClientIdReader.PeekAsync(client, timeout, cancellationToken);

    public Task<CloseReason> ForwardAsync(ProxiedConnection connection, PipeSocket client, PipeSocket upstream, CancellationToken cancellationToken)
    {
        var route = connection.RouteModel;
        var settings = route.Kafka ?? throw new ArgumentException($"Route {route.Name} is not a Kafka route.", nameof(connection));
        var exchanges = conversations.Open(route.Root.Name, route.Name, connection.Client, connection.Source, connection.Upstream.ToString(), settings.DecodeBodiesAlways);
        var session = new KafkaSession(client, upstream, brokers.MapperFor(connection.Served, route, client.LocalEndPoint), settings.MaxFrameSize, route, logger)
        {
            Faults = new KafkaFaultHook(faults.For(route.Name), new ConnectionIdentity(client.RemoteEndPoint, () => processes.Find(client.RemoteEndPoint, client.LocalEndPoint)),
                toxic => metrics.FaultApplied(route.Name, toxic.Name, toxic.Type),
                id => exchanges.Names.TryGet(id, out var name) ? name : null),
            Exchanges = exchanges,
        };
        connection.Kafka = session;
        return session.ForwardAsync(cancellationToken);
    }
}
