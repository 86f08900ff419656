using System.Diagnostics;
using BindProxy.Kafka.Conversation;
using BindProxy.Kafka.Protocol;

namespace BindProxy.Admin;

/// <summary>One request and its response, as <c>GET /api/kafka/requests</c> gives it (one line of the follow stream's NDJSON).</summary>
/// <param name="Time">When the request came.</param>
/// <param name="ClientId">The client.id of the request header.</param>
/// <param name="ClientAddress">The client's address and port.</param>
/// <param name="Source">The source address and port the proxy connected from.</param>
/// <param name="State">in_flight, answered, no_response (Produce with acks=0), unanswered (the connection ended first).</param>
/// <param name="Error">The first error the response names, or "unanswered"; null without one (or when the response was not decoded).</param>
/// <param name="Request">What the request body says; null when it was not decoded (nobody watched).</param>
/// <param name="Summary">The one-line form <c>bindproxy kafka tail</c> prints after the header fields.</param>
internal sealed record KafkaRequestView(
    long Id,
    DateTimeOffset Time,
    string Route,
    string? ClientId,
    string ClientAddress,
    string? Source,
    string Broker,
    string Api,
    short Version,
    int CorrelationId,
    string State,
    int RequestBytes,
    int? ResponseBytes,
    double? LatencyMs,
    string? Error,
    KafkaBodyView? Request,
    KafkaBodyView? Response,
    string? Summary,
    string? Injected)
{
    public static KafkaRequestView Of(KafkaExchange exchange)
    {
        var connection = exchange.Connection;
        var time = DateTimeOffset.UtcNow - Stopwatch.GetElapsedTime(exchange.RequestTimestamp);
        var state = exchange.State;
        string? error = state == ExchangeState.Unanswered ? "unanswered"
            : exchange.Response is { HasError: true } body ? KafkaErrors.NameOf(body.FirstError) : null;
        var summary = ExchangeText.Combined(exchange);
        return new(
            exchange.Id,
            time,
            connection.Route,
            exchange.ClientId,
            connection.Client.ToString(),
            connection.Source?.ToString(),
            connection.Broker,
            exchange.ApiName,
            exchange.ApiVersion,
            exchange.CorrelationId,
            StateName(state),
            exchange.RequestBytes,
            state == ExchangeState.Answered ? exchange.ResponseBytes : null,
            exchange.Latency is { } latency ? Math.Round(latency.TotalMilliseconds, 3) : null,
            error,
            KafkaBodyView.Of(exchange.Request, exchange.RequestNote, exchange.Detailed),
            state == ExchangeState.Answered ? KafkaBodyView.Of(exchange.Response, exchange.ResponseNote, exchange.Detailed) : null,
            summary,
            exchange.Injected);
    }

    public static string StateName(ExchangeState state) => state switch
    {
        ExchangeState.InFlight => "in_flight",
        ExchangeState.Answered => "answered",
        ExchangeState.NoResponse => "no_response",
        _ => "unanswered",
    };
}

/// <summary>What a request or response body says; <see cref="Undecoded"/> says why there is nothing when decoding was asked for and failed.</summary>
internal sealed record KafkaBodyView(
    IReadOnlyList<KafkaTopicView> Topics,
    IReadOnlyList<KafkaErrorView> Errors,
    int? ThrottleTimeMs,
    long Records,
    long RecordBytes,
    int OmittedTopics,
    int OmittedPartitions,
    int OmittedErrors,
    string? Undecoded)
{
    public static KafkaBodyView? Of(ExchangeBody? body, string? note, bool detailed)
    {
        if (body is null)
        {
            return detailed && note is not null ? new([], [], null, 0, 0, 0, 0, 0, note) : null;
        }

        return new(
            [.. body.Topics.Select(t => new KafkaTopicView(t.Name, t.Id?.ToString(), [.. t.Partitions.Select(p => new KafkaPartitionView(p.Index, p.Batches, p.Records, p.RecordBytes,
                p.Batches > 0 ? p.Compression.ToString().ToLowerInvariant() : null, p.ProducerId >= 0 ? p.ProducerId : null, p.FirstOffset >= 0 ? p.FirstOffset : null))]))],
            [.. body.Errors.Select(e => new KafkaErrorView(e.Code, e.Name,
                e.Topic >= 0 && e.Topic < body.Topics.Count ? body.Topics[e.Topic].Label : null, e.Partition >= 0 ? e.Partition : null))],
            body.ThrottleTimeMs,
            body.Records,
            body.RecordBytes,
            body.OmittedTopics,
            body.OmittedPartitions,
            body.OmittedErrors,
            null);
    }
}

internal sealed record KafkaTopicView(string? Name, string? Id, IReadOnlyList<KafkaPartitionView> Partitions);

internal sealed record KafkaPartitionView(int Index, int Batches, long Records, long RecordBytes, string? Compression, long? ProducerId, long? FirstOffset);

internal sealed record KafkaErrorView(short Code, string Name, string? Topic, int? Partition);

/// <summary>One client's conversation on the status page: counts and latency per API, and its last requests.</summary>
internal sealed record KafkaClientView(
    string Route,
    string Client,
    int Records,
    long Bytes,
    int Errors,
    bool Decoding,
    IReadOnlyList<KafkaApiStatsView> Apis,
    IReadOnlyList<KafkaRequestView> Last);

/// <summary>Requests of one API among a client's recorded ones: count, errors, and latency percentiles of the answered.</summary>
internal sealed record KafkaApiStatsView(string Api, int Count, int Errors, double? P50Ms, double? P99Ms);

/// <summary>What the rings hold and may hold, in bytes and records.</summary>
internal sealed record KafkaConversationsView(long Bytes, long TotalBytes, int PerClientRecords, int PerClientBytes, IReadOnlyList<KafkaClientView> Clients);
