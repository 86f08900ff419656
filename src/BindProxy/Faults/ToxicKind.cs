namespace BindProxy.Faults;

/// <summary>
/// A type of toxic and its attributes with their defaults, as toxiproxy defines them. Every
/// attribute is a whole number (milliseconds, KB/s, bytes, microseconds).
/// </summary>
internal sealed record ToxicKind(string Name, string Doc, IReadOnlyList<(string Attribute, long Default)> Attributes)
{
    /// <summary>Attributes written as text (a Kafka toxic's <c>api</c>), empty when unset.</summary>
    public IReadOnlyList<string> TextAttributes { get; init; } = [];

    /// <summary>True for a toxic that works on a Kafka route's requests and responses, not its bytes.</summary>
    public bool IsKafka { get; init; }

    /// <summary>Checks the attributes together (a rule no one attribute says); null, or why not.</summary>
    public Func<IReadOnlyDictionary<string, long>, IReadOnlyDictionary<string, string>, string?>? Check { get; init; }

    public static readonly ToxicKind Latency = new("latency", "adds `latency` ± `jitter` ms to each chunk of data", [("latency", 0), ("jitter", 0)]);
    public static readonly ToxicKind Bandwidth = new("bandwidth", "limits the stream to `rate` KB/s", [("rate", 0)]);
    public static readonly ToxicKind SlowClose = new("slow_close", "passes the close (FIN) on `delay` ms late", [("delay", 0)]);
    public static readonly ToxicKind Timeout = new("timeout", "passes no data; closes the connection after `timeout` ms (0: never)", [("timeout", 0)]);
    public static readonly ToxicKind ResetPeer = new("reset_peer", "resets the connection (RST) `timeout` ms after the toxic starts on it (0: at its first data)", [("timeout", 0)]);
    public static readonly ToxicKind Slicer = new("slicer", "cuts data into slices of `average_size` ± `size_variation` bytes, `delay` µs apart", [("average_size", 0), ("size_variation", 0), ("delay", 0)]);
    public static readonly ToxicKind LimitData = new("limit_data", "closes the connection once `bytes` bytes have passed", [("bytes", 0)]);

    public static readonly ToxicKind KafkaLatency = new("kafka_latency", "delays the responses to requests of `api` (a name or key; every API when unset) naming a `topic` (a regex; any when unset) by `latency` ± `jitter` ms", [("latency", 0), ("jitter", 0)])
    {
        TextAttributes = ["api", "topic"],
        IsKafka = true,
    };

    public static readonly ToxicKind KafkaDrop = new("kafka_drop", "swallows the responses to requests of `api` naming a `topic`: the client hits its request timeout, the connection stays open", [])
    {
        TextAttributes = ["api", "topic"],
        IsKafka = true,
    };

    public static readonly ToxicKind KafkaError = new("kafka_error", "answers requests of `api` naming a `topic` with `error` (a name or code), at `rate` (0-1) or for the next `count` of them; `forward` false: the broker never sees them", [("count", 0)])
    {
        TextAttributes = ["api", "error", "topic", "rate", "forward"],
        IsKafka = true,
        Check = (numbers, texts) =>
            !texts.ContainsKey("error") ? "kafka_error needs attribute error (a Kafka error name such as NOT_LEADER_OR_FOLLOWER, or a code)"
            : !texts.ContainsKey("api") ? "kafka_error needs attribute api (an API name or key such as Produce or 0)"
            : texts.ContainsKey("rate") && numbers.TryGetValue("count", out long count) && count > 0 ? "kafka_error takes rate or count, not both"
            : null,
    };

    public static readonly ToxicKind KafkaThrottle = new("kafka_throttle", "sets `throttle_ms` as the throttle time of the responses to requests of `api` naming a `topic`", [("throttle_ms", 0)])
    {
        TextAttributes = ["api", "topic"],
        IsKafka = true,
    };

    /// <summary>Every type, by its toxiproxy name.</summary>
    public static readonly IReadOnlyDictionary<string, ToxicKind> All =
        new[] { Latency, Bandwidth, SlowClose, Timeout, ResetPeer, Slicer, LimitData, KafkaLatency, KafkaDrop, KafkaError, KafkaThrottle }.ToDictionary(k => k.Name, StringComparer.Ordinal);

    public long Default(string attribute) => Attributes.First(a => a.Attribute == attribute).Default;
}
