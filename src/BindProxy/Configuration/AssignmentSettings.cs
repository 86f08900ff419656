using BindProxy.Addressing;

namespace BindProxy.Configuration;

/// <summary>Per-client source assignment of a route.</summary>
internal sealed record AssignmentSettings
{
    public static readonly AssignmentSettings RoundRobin = new();

    public AssignPolicy Policy { get; init; } = AssignPolicy.RoundRobin;

    /// <summary>kafka-client-id: addresses fixed per client id; reserved for those clients.</summary>
    public IReadOnlyDictionary<string, System.Net.IPAddress> ClientIds { get; init; } = new Dictionary<string, System.Net.IPAddress>();

    public ExhaustedPolicy WhenExhausted { get; init; } = ExhaustedPolicy.Share;

    public TimeSpan IdleTimeout { get; init; } = ProxyDefaults.AssignmentIdleTimeout;
}
