using System.Net;

namespace BindProxy.Bench.Soak;

/// <summary>What the soak run was asked to do; every load is a fixed rate, not "as fast as possible".</summary>
/// <param name="Echo">The echo server the Tcp route forwards to.</param>
/// <param name="ProxyDll">BindProxy.dll, started as <c>dotnet ProxyDll --config FILE</c>.</param>
/// <param name="TcpListen">The Tcp route's listener.</param>
/// <param name="KafkaListen">The Kafka route's bootstrap listener.</param>
/// <param name="Admin">The proxy's admin endpoint (active connections per route).</param>
/// <param name="Duration">How long traffic runs.</param>
/// <param name="SampleEvery">How often the proxy and the loads are sampled.</param>
/// <param name="RowEvery">Span of one row of the report's table (a whole number of samples).</param>
/// <param name="Connections">Long-lived Tcp connections, each exchanging one message every <paramref name="PingEvery"/>.</param>
/// <param name="PingEvery">Interval between exchanges on each long-lived connection.</param>
/// <param name="MessageSize">Bytes per Tcp exchange (long-lived and churn).</param>
/// <param name="ChurnRate">Tcp connections opened, used once and closed per second.</param>
/// <param name="ProduceRate">Kafka messages produced per second.</param>
/// <param name="Consumers">Members of the consumer group.</param>
/// <param name="LeaderMoveEvery">How often every partition's leader moves; null never.</param>
/// <param name="Timeout">Connect and exchange timeout of every Tcp operation.</param>
/// <param name="OutputDirectory">Where soak-STAMP.jsonl, .md and the proxy's logs go.</param>
/// <param name="Commit">Recorded in the report.</param>
internal sealed record SoakSettings(
    IPEndPoint Echo,
    string ProxyDll,
    IPEndPoint TcpListen,
    IPEndPoint KafkaListen,
    IPEndPoint Admin,
    TimeSpan Duration,
    TimeSpan SampleEvery,
    TimeSpan RowEvery,
    int Connections,
    TimeSpan PingEvery,
    int MessageSize,
    int ChurnRate,
    int ProduceRate,
    int Consumers,
    TimeSpan? LeaderMoveEvery,
    TimeSpan Timeout,
    string OutputDirectory,
    string? Commit)
{
    public const string TcpRoute = "soak-tcp";
    public const string KafkaRoute = "soak-kafka";
    public const string TcpSource = "127.0.0.2";
    public const string KafkaSource = "127.0.0.3";
    public const string Topic = "soak";
    public const string Group = "soak-group";
    public const int Brokers = 3;
    public const int Partitions = 6;
    public const int ValueSize = 100;

    /// <summary>How long the proxy may drain on SIGTERM; every client is closed by then anyway.</summary>
    public static readonly TimeSpan DrainTimeout = TimeSpan.FromSeconds(10);

    /// <summary>A twelfth of the run per row (5 min for an hour), in whole samples.</summary>
    public static TimeSpan DefaultRowEvery(TimeSpan duration, TimeSpan sampleEvery)
    {
        var samples = Math.Max(1, (long)Math.Round(duration / 12 / sampleEvery));
        return sampleEvery * samples;
    }

    /// <summary>A twelfth of the run, between 30 s and 5 min: a dozen moves in an hour, a few in two minutes.</summary>
    public static TimeSpan DefaultLeaderMoveEvery(TimeSpan duration) =>
        TimeSpan.FromTicks(Math.Clamp((duration / 12).Ticks, TimeSpan.FromSeconds(30).Ticks, TimeSpan.FromMinutes(5).Ticks));
}
