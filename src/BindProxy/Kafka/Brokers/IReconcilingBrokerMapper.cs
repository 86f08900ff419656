using BindProxy.Kafka.Rewriting;

namespace BindProxy.Kafka.Brokers;

/// <summary>
/// A broker address mapper that may meet brokers no proxy listener serves yet (new ones, or known
/// ones that moved). It notes them instead of mapping them; the session awaits
/// <see cref="ReconcileAsync"/>, which opens or updates their listeners, and rewrites the response
/// again — so a client is never told a port before the proxy listens on it, and the rewriting
/// walkers stay synchronous.
/// </summary>
internal interface IReconcilingBrokerMapper : IBrokerAddressMapper
{
    /// <summary>True when <see cref="IBrokerAddressMapper.Map"/> met brokers it could not map since the last reconcile.</summary>
    bool HasPending { get; }

    /// <summary>Makes the brokers met reachable through the proxy; null when done, or why one cannot be served.</summary>
    ValueTask<string?> ReconcileAsync(CancellationToken cancellationToken);
}
