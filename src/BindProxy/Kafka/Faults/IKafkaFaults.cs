namespace BindProxy.Kafka.Faults;

/// <summary>
/// What a <see cref="KafkaSession"/> asks about faults: told of every request it tracks, and
/// asked, for every response, whether to pass it on and after how long.
/// </summary>
internal interface IKafkaFaults
{
    /// <summary>A request was tracked (its client.id, once one was seen).</summary>
    void OnRequest(short apiKey, string? clientId);

    /// <summary>True while a Kafka toxic is on the route: a response must then be whole before it is let through.</summary>
    bool HasKafkaToxics { get; }

    /// <summary>A response to a request of <paramref name="apiKey"/> is ready; false to swallow it. May wait (a delay) first.</summary>
    ValueTask<bool> OnResponseAsync(short apiKey, CancellationToken cancellationToken);
}
