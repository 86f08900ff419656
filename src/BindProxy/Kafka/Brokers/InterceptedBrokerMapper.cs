using BindProxy.Interception;
using BindProxy.Kafka.Rewriting;

namespace BindProxy.Kafka.Brokers;

/// <summary>
/// The mapper of an intercepting Kafka route: a broker keeps the address it advertises (the
/// client connects there, and the redirect brings it to the proxy), and its port joins the
/// intercepted ports before the response that names it is passed on, so the client's first
/// connection to a new or moved broker is already redirected. When the port cannot be added the
/// response is not passed on (the client's connection is closed with the reason): the client
/// would otherwise reach that broker around the proxy.
/// </summary>
internal sealed class InterceptedBrokerMapper(InterceptedPorts ports, string route) : IBrokerAddressMapper
{
    public (string Host, int Port) Map(int nodeId, string host, int port)
    {
        ports.Add(route, port);
        return (host, port);
    }
}
