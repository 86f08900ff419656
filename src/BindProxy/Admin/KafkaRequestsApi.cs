using System.Text.Json;
using System.Text.Json.Serialization.Metadata;
using BindProxy.Kafka.Conversation;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Hosting;

namespace BindProxy.Admin;

/// <summary>
/// <c>GET /api/kafka/requests</c> (the recorded exchanges, or with <c>follow=true</c> an NDJSON
/// stream of new ones until the caller leaves) and <c>GET /api/kafka/clients</c> (the status
/// page's per-client panel, which watches the clients it shows for a few seconds per poll).
/// </summary>
internal sealed class KafkaRequestsApi(KafkaConversations conversations, IHostApplicationLifetime lifetime)
{
    /// <summary>Records a plain query gives by default (the last ones); <c>limit</c> changes it.</summary>
    public const int DefaultLimit = 200;

    /// <summary>Records a follow stream starts with, as <c>tail -f</c> does; <c>limit</c> changes it.</summary>
    public const int DefaultFollowBacklog = 10;

    /// <summary>How long one poll of the status page's panel keeps its clients decoded.</summary>
    public static readonly TimeSpan PanelLease = TimeSpan.FromSeconds(5);

    private const int PanelLast = 20;

    /// <summary>How long a follow stream gathers completed requests before it writes them (within <see cref="KafkaConversations.FollowBacklog"/>).</summary>
    private static readonly TimeSpan FollowBatchDelay = TimeSpan.FromMilliseconds(50);

    private static readonly ReadOnlyMemory<byte> NewLine = "\n"u8.ToArray();

    public static bool TryFilter(IQueryCollection query, out ExchangeFilter filter, out int? limit, out string? problem)
    {
        filter = ExchangeFilter.All;
        limit = null;
        problem = null;
        if (query["limit"].ToString() is { Length: > 0 } limitText)
        {
            if (!int.TryParse(limitText, out var parsed) || parsed < 0)
            {
                problem = $"limit: '{limitText}' is not a count";
                return false;
            }

            limit = parsed;
        }

        var errors = query["errors"].ToString();
        if (errors.Length > 0 && !bool.TryParse(errors, out _))
        {
            problem = $"errors: '{errors}' is neither true nor false";
            return false;
        }

        filter = new ExchangeFilter(
            Text(query, "route"),
            Text(query, "client"),
            Text(query, "source"),
            Text(query, "api"),
            Text(query, "topic"),
            errors.Length > 0 && bool.Parse(errors));
        return true;
    }

    public async Task RequestsAsync(HttpContext context, JsonTypeInfo<KafkaRequestView> viewType, JsonTypeInfo<IReadOnlyList<KafkaRequestView>> listType)
    {
        var query = context.Request.Query;
        context.Response.Headers.CacheControl = "no-store";
        if (!TryFilter(query, out var filter, out var limit, out var problem))
        {
            context.Response.StatusCode = StatusCodes.Status400BadRequest;
            await context.Response.WriteAsync(problem + "\n", context.RequestAborted).ConfigureAwait(false);
            return;
        }

        var follow = query["follow"].ToString();
        if (!string.Equals(follow, "true", StringComparison.OrdinalIgnoreCase))
        {
            var list = conversations.Query(filter, limit ?? DefaultLimit).Select(KafkaRequestView.Of).ToList();
            await context.Response.WriteAsJsonAsync<IReadOnlyList<KafkaRequestView>>(list, listType, contentType: null, context.RequestAborted).ConfigureAwait(false);
            return;
        }

        await FollowAsync(context, filter, limit ?? DefaultFollowBacklog, viewType).ConfigureAwait(false);
    }

    public KafkaConversationsView Clients(HttpContext context)
    {
        TryFilter(context.Request.Query, out var filter, out _, out _);
        if (string.Equals(context.Request.Query["watch"].ToString(), "true", StringComparison.OrdinalIgnoreCase))
        {
            conversations.WatchFor(filter with { Topic = null, ErrorsOnly = false, Api = null, Source = null }, PanelLease);
        }

        var clients = new List<KafkaClientView>();
        foreach (var conversation in conversations.Clients.OrderBy(c => c.Root, StringComparer.Ordinal).ThenBy(c => c.Client, StringComparer.Ordinal))
        {
            if ((filter.Route is not null && filter.Route != conversation.Root) || (filter.Client is not null && filter.Client != conversation.Client))
            {
                continue;
            }

            var records = conversation.Snapshot();
            var apis = records.GroupBy(r => r.ApiName, StringComparer.Ordinal)
                .Select(g =>
                {
                    var latencies = g.Where(r => r.Latency is not null).Select(r => r.Latency!.Value.TotalMilliseconds).Order().ToArray();
                    return new KafkaApiStatsView(g.Key, g.Count(), g.Count(r => r.HasError), Percentile(latencies, 0.50), Percentile(latencies, 0.99));
                })
                .OrderByDescending(a => a.Count).ThenBy(a => a.Api, StringComparer.Ordinal)
                .ToList();
            clients.Add(new KafkaClientView(
                conversation.Root,
                conversation.Client,
                records.Length,
                conversation.Bytes,
                records.Count(r => r.HasError),
                conversations.IsWatched(conversation.Root, conversation.Root, conversation.Client),
                apis,
                [.. records.TakeLast(PanelLast).Reverse().Select(KafkaRequestView.Of)]));
        }

        return new KafkaConversationsView(conversations.Bytes, KafkaConversations.TotalBytes, KafkaConversations.RecordsPerClient, KafkaConversations.BytesPerClient, clients);
    }

    /// <summary>Nearest-rank percentile of sorted values, in ms rounded to microseconds; null without any.</summary>
    internal static double? Percentile(double[] sorted, double p)
    {
        if (sorted.Length == 0)
        {
            return null;
        }

        int rank = (int)Math.Ceiling(p * sorted.Length);
        return Math.Round(sorted[Math.Clamp(rank - 1, 0, sorted.Length - 1)], 3);
    }

    private async Task FollowAsync(HttpContext context, ExchangeFilter filter, int backlog, JsonTypeInfo<KafkaRequestView> viewType)
    {
        // The stream ends when the caller leaves or the proxy stops: a follower never holds up a shutdown.
        using var ended = CancellationTokenSource.CreateLinkedTokenSource(context.RequestAborted, lifetime.ApplicationStopping);
        var aborted = ended.Token;
        context.Response.ContentType = "application/x-ndjson; charset=utf-8";

        // Watch first, then read the backlog, so nothing completes between the two unseen; what
        // both give is written once.
        using var watch = conversations.Watch(filter);
        var seen = new HashSet<long>();
        var body = context.Response.Body;
        try
        {
            foreach (var exchange in conversations.Query(filter, backlog))
            {
                if (exchange.State != ExchangeState.InFlight)
                {
                    seen.Add(exchange.Id);
                    await WriteLineAsync(body, KafkaRequestView.Of(exchange), viewType, aborted).ConfigureAwait(false);
                }
            }

            await body.FlushAsync(aborted).ConfigureAwait(false);
            var reader = watch.Reader;
            while (await reader.WaitToReadAsync(aborted).ConfigureAwait(false))
            {
                // What completes within a moment goes out in one write: a busy client's requests
                // then cost the proxy one wake-up and one send per batch, not one per request.
                await Task.Delay(FollowBatchDelay, aborted).ConfigureAwait(false);
                while (reader.TryRead(out var exchange))
                {
                    if (seen.Count == 0 || !seen.Remove(exchange.Id))
                    {
                        await WriteLineAsync(body, KafkaRequestView.Of(exchange), viewType, aborted).ConfigureAwait(false);
                    }
                }

                await body.FlushAsync(aborted).ConfigureAwait(false);
            }
        }
        catch (OperationCanceledException) when (aborted.IsCancellationRequested)
        {
            // The caller left, or the proxy is stopping: the watch ends with it.
        }
    }

    private static async Task WriteLineAsync(Stream body, KafkaRequestView view, JsonTypeInfo<KafkaRequestView> viewType, CancellationToken cancellationToken)
    {
        var line = JsonSerializer.SerializeToUtf8Bytes(view, viewType);
        await body.WriteAsync(line, cancellationToken).ConfigureAwait(false);
        await body.WriteAsync(NewLine, cancellationToken).ConfigureAwait(false);
    }

    private static string? Text(IQueryCollection query, string name) => query[name].ToString() is { Length: > 0 } text ? text : null;
}
