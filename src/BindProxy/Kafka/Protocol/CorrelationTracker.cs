using System.Buffers;

namespace BindProxy.Kafka.Protocol;

/// <summary>What a response with a given correlation id answers.</summary>
internal readonly record struct InFlightRequest(short ApiKey, short ApiVersion);

internal enum TrackStatus
{
    /// <summary>Recorded; the matching response can be taken later.</summary>
    Tracked,

    /// <summary>Produce with acks=0: the broker sends no response, so nothing was recorded.</summary>
    NoResponseExpected,

    /// <summary>The in-flight limit is reached; the request was not recorded.</summary>
    TooManyInFlight,

    /// <summary>The correlation id is already in flight on this connection; the request was not recorded.</summary>
    DuplicateCorrelationId,

    /// <summary>The request header could not be parsed.</summary>
    Malformed,
}

/// <summary>
/// Per-connection map from correlation id to the (api key, version) of the request, because Kafka
/// responses do not say what they answer. The request and response pumps run concurrently, so
/// access is locked; the lock is held for a dictionary operation only.
/// </summary>
internal sealed class CorrelationTracker
{
    private readonly Dictionary<int, InFlightRequest> _inFlight = [];
    private readonly Lock _lock = new();

    public CorrelationTracker(int maxInFlight)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(maxInFlight);
        MaxInFlight = maxInFlight;
    }

    public int MaxInFlight { get; }

    public int Count
    {
        get
        {
            lock (_lock)
            {
                return _inFlight.Count;
            }
        }
    }

    /// <summary>Parses a request frame's header and records it unless it is Produce with acks=0.</summary>
    public TrackStatus TrackRequest(in ReadOnlySequence<byte> requestFrame, out KafkaRequestHeader header)
    {
        if (KafkaRequestHeader.TryParse(requestFrame, out header) != MalformedReason.None)
        {
            return TrackStatus.Malformed;
        }

        if (!ProduceRequestInspector.ExpectsResponse(requestFrame, header))
        {
            return TrackStatus.NoResponseExpected;
        }

        return Track(header.CorrelationId, header.ApiKey, header.ApiVersion);
    }

    /// <summary>Records a request that expects a response.</summary>
    public TrackStatus Track(int correlationId, short apiKey, short apiVersion)
    {
        lock (_lock)
        {
            if (_inFlight.Count >= MaxInFlight)
            {
                return TrackStatus.TooManyInFlight;
            }

            return _inFlight.TryAdd(correlationId, new InFlightRequest(apiKey, apiVersion))
                ? TrackStatus.Tracked
                : TrackStatus.DuplicateCorrelationId;
        }
    }

    /// <summary>The request a response answers, left in place; false for an unknown id.</summary>
    public bool TryPeek(int correlationId, out InFlightRequest request)
    {
        lock (_lock)
        {
            return _inFlight.TryGetValue(correlationId, out request);
        }
    }

    /// <summary>Removes and returns the request a response answers; false for an unknown id.</summary>
    public bool TryTake(int correlationId, out InFlightRequest request)
    {
        lock (_lock)
        {
            return _inFlight.Remove(correlationId, out request);
        }
    }
}
