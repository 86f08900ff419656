namespace BindProxy.Kafka.Rewriting;

/// <summary>
/// Decides the address a client should see for a broker. Called once per broker entry in a
/// response, by a synchronous walker; must be stable per node id (KRaft ids such as 1 or 1001
/// and growing clusters break schemes that derive ports from ids arithmetically). A mapper that
/// cannot serve a broker throws <see cref="InvalidOperationException"/> with the reason: the
/// response is not passed on and the client's connection is closed with that reason.
/// </summary>
internal interface IBrokerAddressMapper
{
    (string Host, int Port) Map(int nodeId, string host, int port);
}
