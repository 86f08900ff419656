namespace BindProxy.Kafka.Rewriting;

/// <summary>
/// Decides the address a client should see for a broker. Called once per broker entry in a
/// response; must be stable per node id (KRaft ids such as 1 or 1001 and growing clusters
/// break schemes that derive ports from ids arithmetically).
/// </summary>
internal interface IBrokerAddressMapper
{
    (string Host, int Port) Map(int nodeId, string host, int port);
}
