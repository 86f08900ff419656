using System.Diagnostics;
using BindProxy.Kafka.Protocol;

namespace BindProxy.Kafka.Conversation;

/// <summary>Where an exchange stands.</summary>
internal enum ExchangeState : byte
{
    /// <summary>Forwarded; no response yet.</summary>
    InFlight,

    /// <summary>The response came and was forwarded.</summary>
    Answered,

    /// <summary>Produce with acks=0: the broker sends no response.</summary>
    NoResponse,

    /// <summary>The connection ended before the response came.</summary>
    Unanswered,
}

/// <summary>
/// One request of a Kafka connection and its response: what the proxy reads of every frame's header
/// (API, version, correlation id, sizes, timing) always, and what the bodies say (<see cref="ExchangeBody"/>)
/// when they were decoded. Kept in its client's <see cref="ClientConversation"/>, so it outlives the
/// connection.
/// </summary>
/// <remarks>
/// The request fields are set before the exchange is shared, except the body of a Produce request
/// streamed through, which is set once its last byte has passed (before its response can come). The response fields are written once,
/// by <see cref="ConnectionExchanges"/>, with <see cref="State"/> last; a reader that sees a state
/// other than <see cref="ExchangeState.InFlight"/> sees every response field.
/// </remarks>
internal sealed class KafkaExchange
{
    /// <summary>Bytes an exchange without decoded bodies costs: this object and its slot in a ring.</summary>
    public const int HeaderBytes = 160;

    private int _state;
    private string? _injected;

    public KafkaExchange(long id, ConnectionExchanges connection, string? clientId, short apiKey, short apiVersion, int correlationId, int requestBytes, long requestTimestamp)
    {
        Id = id;
        Connection = connection;
        ClientId = clientId;
        ApiKey = apiKey;
        ApiVersion = apiVersion;
        CorrelationId = correlationId;
        RequestBytes = requestBytes;
        RequestTimestamp = requestTimestamp;
    }

    /// <summary>Numbers every exchange of the process in the order the requests came.</summary>
    public long Id { get; }

    /// <summary>The connection: route, client, source and broker addresses.</summary>
    public ConnectionExchanges Connection { get; }

    public string? ClientId { get; }

    public short ApiKey { get; }

    public string ApiName => KafkaApis.NameOf(ApiKey);

    public short ApiVersion { get; }

    public int CorrelationId { get; }

    /// <summary>The request frame's bytes, size prefix included.</summary>
    public int RequestBytes { get; }

    /// <summary>When the request was read whole (its header, for one streamed through), <see cref="Stopwatch"/> ticks.</summary>
    public long RequestTimestamp { get; }

    public ExchangeState State => (ExchangeState)Volatile.Read(ref _state);

    /// <summary>The response frame's bytes as the broker sent them; 0 until it came.</summary>
    public int ResponseBytes { get; private set; }

    /// <summary>When the response was read whole, <see cref="Stopwatch"/> ticks; 0 until then.</summary>
    public long ResponseTimestamp { get; private set; }

    /// <summary>What the request body says, when it was decoded.</summary>
    public ExchangeBody? Request { get; private set; }

    /// <summary>What the response body says, when it was decoded.</summary>
    public ExchangeBody? Response { get; private set; }

    /// <summary>Why the request body was not decoded although it was asked for (streamed through, a body the model cannot read).</summary>
    public string? RequestNote { get; private set; }

    /// <summary>Why the response body was not decoded although it was asked for.</summary>
    public string? ResponseNote { get; private set; }

    /// <summary>What a fault injected into this exchange, if one did; the rest of the record is what went over the wire.</summary>
    public string? Injected => Volatile.Read(ref _injected);

    /// <summary>Time from the request to its response; null until the response came.</summary>
    public TimeSpan? Latency => State == ExchangeState.Answered ? Stopwatch.GetElapsedTime(RequestTimestamp, ResponseTimestamp) : null;

    /// <summary>True when the response names an error, or none came before the connection ended.</summary>
    public bool HasError => State == ExchangeState.Unanswered || (Response?.HasError ?? false);

    /// <summary>The first error the response names (by code), or 0.</summary>
    public short FirstError => Response?.FirstError ?? 0;

    /// <summary>The bytes this record holds, for its ring's budget.</summary>
    public int EstimatedBytes => HeaderBytes + (Request?.EstimatedBytes ?? 0) + (Response?.EstimatedBytes ?? 0)
        + (RequestNote?.Length * 2 ?? 0) + (ResponseNote?.Length * 2 ?? 0);

    /// <summary>What its ring counts for it now (0 once dropped); guarded by the ring's lock.</summary>
    internal int AccountedBytes { get; set; }

    /// <summary>Whether the bodies are decoded: someone watched its client when the request came, or the route decodes always.</summary>
    internal bool Detailed { get; init; }

    /// <summary>Marks the exchange as shaped by a fault (an injected error response, a delay, a drop), with what it did.</summary>
    public void MarkInjected(string what) => Volatile.Write(ref _injected, what);

    /// <summary>Reads a Produce request streamed through as its bytes pass; null once it has passed, or for any other request.</summary>
    internal StreamedProduceReader? Streamed { get; set; }

    /// <summary>The decoded request body, or why there is none: before the exchange is shared, or when a streamed request has passed.</summary>
    internal void SetRequest(ExchangeBody? body, string? note)
    {
        Request = body;
        RequestNote = note;
    }

    /// <summary>The response came; its fields first, the state last.</summary>
    internal void SetResponse(int bytes, long timestamp, ExchangeBody? body, string? note)
    {
        ResponseBytes = bytes;
        ResponseTimestamp = timestamp;
        Response = body;
        ResponseNote = note;
        Volatile.Write(ref _state, (int)ExchangeState.Answered);
    }

    internal void SetState(ExchangeState state) => Volatile.Write(ref _state, (int)state);
}
