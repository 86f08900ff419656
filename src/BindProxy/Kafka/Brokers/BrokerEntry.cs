using BindProxy.Configuration;
using BindProxy.Transport;

namespace BindProxy.Kafka.Brokers;

/// <summary>A broker of one Kafka route: its real address, the proxy port clients are told, and its listener's route.</summary>
internal sealed record BrokerEntry(int NodeId, string Host, int Port, int ProxyPort, ServedRoute Route);
