using System.Net;
using BindProxy.Addressing;

namespace BindProxy.Faults;

/// <summary>
/// Who is at the client end of a connection, as a toxic's <see cref="ToxicMatch"/> asks: its
/// address, its process (looked up only when a match asks for it, once), and for a Kafka
/// connection its client.id once the first request named it.
/// </summary>
internal sealed class ConnectionIdentity(IPEndPoint client, Func<ProcessInfo?> lookUpProcess)
{
    private readonly Lazy<ProcessInfo?> _process = new(lookUpProcess);

    public IPEndPoint Client { get; } = client;

    public ProcessInfo? Process => _process.Value;

    /// <summary>The Kafka client.id, when known.</summary>
    public string? ClientId { get; set; }
}
