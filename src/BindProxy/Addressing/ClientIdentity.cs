namespace BindProxy.Addressing;

/// <summary>Who a connection belongs to, for sticky source assignment.</summary>
/// <param name="Key">The stickiness key, unique per client (e.g. <c>pid:4242@1234567</c>).</param>
/// <param name="Display">How logs and the admin API name the client (e.g. <c>pid 4242 java</c>).</param>
internal sealed record ClientIdentity(string Key, string Display)
{
    private const string KafkaClientIdKey = "client.id:";

    /// <summary>The Kafka client.id this client is told by, or null when it is told by something else.</summary>
    public string? KafkaClientId => Key.StartsWith(KafkaClientIdKey, StringComparison.Ordinal) ? Key[KafkaClientIdKey.Length..] : null;

    public static ClientIdentity ForAddress(System.Net.IPAddress address) => new($"ip:{address}", $"client {address}");

    public static ClientIdentity ForKafkaClientId(string clientId) => new($"{KafkaClientIdKey}{clientId}", $"client '{clientId}'");
}
