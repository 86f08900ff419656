using System.Buffers;
using System.Diagnostics;
using System.Net;
using BindProxy.Kafka.Protocol;

namespace BindProxy.Kafka.Conversation;

/// <summary>
/// The record keeper of one Kafka connection: makes a <see cref="KafkaExchange"/> of each request
/// (header fields always; the body decoded when someone watches the client or the route decodes
/// always), completes it with its response, and leaves those still in flight at the close
/// unanswered. The records go to their client's ring, so they outlive the connection.
/// </summary>
/// <remarks>
/// For a capture or a fault on the connection: <see cref="TryFind"/> says which request a frame's
/// correlation id belongs to (API and version, in flight or recently answered), and
/// <see cref="KafkaExchange.MarkInjected"/> marks a record as shaped by a fault.
/// </remarks>
internal sealed class ConnectionExchanges
{
    /// <summary>Answered exchanges of this connection kept for <see cref="TryFind"/>, besides those in flight.</summary>
    private const int RecentCount = 64;

    private readonly KafkaConversations _owner;
    private readonly bool _decodeAlways;
    private readonly Dictionary<int, KafkaExchange> _inFlight = [];
    private readonly KafkaExchange?[] _recent = new KafkaExchange?[RecentCount];
    private readonly Lock _lock = new();
    private int _recentNext;
    private ClientConversation? _ring;

    internal ConnectionExchanges(KafkaConversations owner, string root, string route, IPEndPoint client, IPEndPoint? source, string broker, bool decodeAlways, TopicNames names)
    {
        _owner = owner;
        Root = root;
        Route = route;
        Client = client;
        Source = source;
        Broker = broker;
        _decodeAlways = decodeAlways;
        Names = names;
    }

    /// <summary>The route family's root (the bootstrap route).</summary>
    public string Root { get; }

    /// <summary>The route the connection came in on (the bootstrap route or a broker's).</summary>
    public string Route { get; }

    /// <summary>The client's address and port.</summary>
    public IPEndPoint Client { get; }

    /// <summary>The source address and port the proxy connected from.</summary>
    public IPEndPoint? Source { get; }

    /// <summary>The broker's address.</summary>
    public string Broker { get; }

    public TopicNames Names { get; }

    /// <summary>
    /// Records a request. <paramref name="frame"/> is the whole frame, or its start when it is
    /// streamed through (<paramref name="frameLength"/> says how long it is).
    /// </summary>
    public KafkaExchange OnRequest(in ReadOnlySequence<byte> frame, long frameLength, in KafkaRequestHeader header, bool expectsResponse)
    {
        var clientId = header.ClientId;
        bool detailed = _decodeAlways || _owner.IsWatched(Root, Route, clientId);
        var exchange = new KafkaExchange(_owner.NextId(), this, clientId, header.ApiKey, header.ApiVersion, header.CorrelationId,
            (int)Math.Min(frameLength, int.MaxValue), Stopwatch.GetTimestamp())
        {
            Detailed = detailed,
        };

        if (detailed)
        {
            if (frame.Length < frameLength && header.ApiKey == KafkaApiKeys.Produce && KafkaApis.Of(header.ApiKey).Knows(header.ApiVersion))
            {
                // Read as it passes (OnStreamed), so a large Produce request has its record counts too.
                var reader = new StreamedProduceReader(header, frameLength);
                reader.Feed(frame);
                exchange.Streamed = reader;
                exchange.SetRequest(null, reader.ToBody(null, out var note) is null ? note : null);
            }
            else if (frame.Length < frameLength)
            {
                exchange.SetRequest(null, $"streamed through ({frameLength} bytes), not decoded");
            }
            else
            {
                var body = ExchangeDecoder.Request(frame, header, Names, out var note);
                exchange.SetRequest(body, note);
            }
        }

        if (!expectsResponse)
        {
            exchange.SetState(ExchangeState.NoResponse);
        }
        else
        {
            lock (_lock)
            {
                _inFlight[header.CorrelationId] = exchange;
            }
        }

        RingOf(clientId).Add(exchange);
        if (!expectsResponse)
        {
            _owner.Completed(exchange);
        }

        return exchange;
    }

    /// <summary>
    /// The next bytes of a request being streamed through whose exchange has a
    /// <see cref="KafkaExchange.Streamed"/> reader; with its last byte, the request's body is set.
    /// </summary>
    public void OnStreamed(KafkaExchange exchange, in ReadOnlySequence<byte> bytes)
    {
        if (exchange.Streamed is not { } reader)
        {
            return;
        }

        reader.Feed(bytes);
        if (reader.IsComplete)
        {
            exchange.Streamed = null;
            var body = reader.ToBody(Names, out var note);
            exchange.SetRequest(body, note);
            RingOf(exchange.ClientId).Resized(exchange);
        }
    }

    /// <summary>Completes the exchange <paramref name="correlationId"/> with its response frame.</summary>
    public KafkaExchange? OnResponse(int correlationId, in ReadOnlySequence<byte> frame)
    {
        long now = Stopwatch.GetTimestamp();
        KafkaExchange? exchange;
        lock (_lock)
        {
            if (!_inFlight.Remove(correlationId, out exchange))
            {
                return null;
            }

            _recent[_recentNext] = exchange;
            _recentNext = (_recentNext + 1) % RecentCount;
        }

        ExchangeBody? body = null;
        string? note = null;
        if (exchange.Detailed)
        {
            body = ExchangeDecoder.Response(frame, exchange.ApiKey, exchange.ApiVersion, Names, out note);
            if (body is not null && exchange.ApiKey == KafkaApiKeys.Metadata)
            {
                Names.Learn(body);
            }
        }

        exchange.SetResponse((int)Math.Min(frame.Length, int.MaxValue), now, body, note);
        if (body is not null || note is not null)
        {
            RingOf(exchange.ClientId).Resized(exchange);
        }

        _owner.Completed(exchange);
        return exchange;
    }

    /// <summary>The connection ended: requests still in flight are left unanswered.</summary>
    public void OnClose()
    {
        List<KafkaExchange> left;
        lock (_lock)
        {
            left = [.. _inFlight.Values];
            _inFlight.Clear();
        }

        left.Sort((a, b) => a.Id.CompareTo(b.Id));
        foreach (var exchange in left)
        {
            exchange.SetState(ExchangeState.Unanswered);
            _owner.Completed(exchange);
        }
    }

    /// <summary>The exchange of <paramref name="correlationId"/> on this connection: in flight, or among the last answered.</summary>
    public bool TryFind(int correlationId, out KafkaExchange exchange)
    {
        lock (_lock)
        {
            if (_inFlight.TryGetValue(correlationId, out exchange!))
            {
                return true;
            }

            for (int i = 1; i <= RecentCount; i++)
            {
                var candidate = _recent[(_recentNext - i + RecentCount) % RecentCount];
                if (candidate?.CorrelationId == correlationId)
                {
                    exchange = candidate;
                    return true;
                }
            }
        }

        return false;
    }

    private ClientConversation RingOf(string? clientId)
    {
        var client = clientId ?? "-";
        var ring = _ring;
        if (ring is null || ring.IsRemoved || !ReferenceEquals(ring.Client, client) && !string.Equals(ring.Client, client, StringComparison.Ordinal))
        {
            ring = _owner.RingFor(Root, client);
            _ring = ring;
        }

        return ring;
    }
}
