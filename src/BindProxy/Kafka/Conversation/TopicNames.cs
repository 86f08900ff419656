using System.Collections.Concurrent;

namespace BindProxy.Kafka.Conversation;

/// <summary>
/// Topic names by id, learned from the decoded bodies of a route family that carry both (Metadata
/// responses): Fetch v13+ and a few others name topics by id only. Bounded: past
/// <see cref="MaxTopics"/> ids new ones are not learned.
/// </summary>
internal sealed class TopicNames
{
    public const int MaxTopics = 10_000;

    private readonly ConcurrentDictionary<Guid, string> _names = new();

    public int Count => _names.Count;

    public bool TryGet(Guid id, out string name) => _names.TryGetValue(id, out name!);

    /// <summary>Learns every (id, name) pair <paramref name="body"/> holds.</summary>
    public void Learn(ExchangeBody body)
    {
        foreach (var topic in body.Topics)
        {
            if (topic is { Name: { } name, Id: { } id } && id != Guid.Empty && (_names.Count < MaxTopics || _names.ContainsKey(id)))
            {
                _names[id] = name;
            }
        }
    }
}
