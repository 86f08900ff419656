namespace BindProxy.Kafka.Brokers;

/// <summary>A broker as a response names it: node id and the address the cluster advertises.</summary>
internal readonly record struct AdvertisedBroker(int NodeId, string Host, int Port);
