using System.Net;
using BindProxy.Configuration;
using BindProxy.Transport;

namespace BindProxy.Kafka.Brokers;

/// <summary>
/// Opens and closes the listeners of a Kafka route's brokers. Kafka says what it needs here; the
/// host owns the listeners (their transport, accept loop and drain).
/// </summary>
internal interface IBrokerListeners
{
    /// <summary>
    /// Starts listening on <paramref name="endpoint"/> for <paramref name="broker"/>, a member of a
    /// Kafka route's family; the endpoint bound (its real port for port 0), or why it could not be.
    /// </summary>
    ValueTask<BindResult> ListenAsync(ServedRoute broker, IPEndPoint endpoint, CancellationToken cancellationToken);

    /// <summary>
    /// Removes <paramref name="broker"/> from its family and closes its listeners; its connections
    /// get the drain timeout to finish (not awaited here), then are reset.
    /// </summary>
    ValueTask CloseAsync(ServedRoute broker, string reason);
}
