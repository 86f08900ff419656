using System.Collections.Concurrent;
using System.Diagnostics.Metrics;
using BindProxy.Outbound;
using BindProxy.Transport;

namespace BindProxy.Forwarding;

/// <summary>
/// The proxy's instruments, on the meter <c>BindProxy</c>. Every recording call is made once per
/// connection event (open, close, connect failure, Kafka request, HTTP response), never per packet:
/// forwarded bytes and open connections are read off the connections themselves when the metrics
/// are collected, for the routes served then — a removed route's live series go with it; its
/// event counters keep what it did. An Http route's connections are its upstream connections, on
/// the same series as a Tcp route's. The layers above (Kafka, Http) record their own events in
/// plain values, so the forwarding path's metrics know nothing of their protocols.
/// </summary>
internal sealed class ProxyMetrics
{
    public const string MeterName = "BindProxy";

    /// <summary>Loopback connects take tens of microseconds; remote ones up to the connect timeout.</summary>
    /// <summary>Kafka requests: a loopback Metadata answer takes tens of microseconds, a Fetch long poll up to its max wait.</summary>
    private static readonly double[] KafkaBuckets = [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];

    private static readonly double[] ConnectBuckets = [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

    private readonly Counter<long> _opened;
    private readonly Counter<long> _closed;
    private readonly Counter<long> _rejected;
    private readonly Histogram<double> _connectDuration;
    private readonly Counter<long> _connectFailures;
    private readonly Counter<long> _poolExhausted;
    private readonly Counter<long> _kafkaRequests;
    private readonly Histogram<double> _kafkaDuration;
    private readonly Counter<long> _httpResponses;
    private readonly Counter<long> _stalls;
    private readonly Counter<long> _faultsApplied;

    // Forwarded bytes: each live connection remembers what of its counters has been added to its
    // route's totals, so a collection adds only the difference and a close adds the rest; totals
    // never go down.
    private readonly ConnectionRegistry _connections;
    private readonly RouteTable _routes;
    private readonly ConcurrentDictionary<string, RouteBytes> _bytes = new(StringComparer.Ordinal);

    public ProxyMetrics(IMeterFactory meterFactory, ConnectionRegistry connections, RouteTable routes, DescriptorBudget descriptors)
    {
        _connections = connections;
        _routes = routes;
        var meter = meterFactory.Create(MeterName);
        meter.CreateObservableUpDownCounter("bindproxy.connections.active", ObserveActive, "{connection}",
            "Proxied connections open now (upstream connected), by route");
        _opened = meter.CreateCounter<long>("bindproxy.connections.opened", "{connection}",
            "Proxied connections whose upstream connected, by route");
        _closed = meter.CreateCounter<long>("bindproxy.connections.closed", "{connection}",
            "Proxied connections that ended, by route and close reason");
        _rejected = meter.CreateCounter<long>("bindproxy.connections.rejected", "{connection}",
            "Client connections closed before any upstream connect: the route was at MaxConnections or no longer configured");
        _connectDuration = meter.CreateHistogram("bindproxy.upstream.connect.duration", "s",
            "Time to connect the upstream (source bind, resolve, connect, failover), by route and result",
            tags: null, advice: new InstrumentAdvice<double> { HistogramBucketBoundaries = ConnectBuckets });
        _connectFailures = meter.CreateCounter<long>("bindproxy.upstream.connect.failures", "{connection}",
            "Upstream connects that failed, by route and error");
        _poolExhausted = meter.CreateCounter<long>("bindproxy.source_pool.exhausted", "{event}",
            "Connections refused because no source address of the route's pool had a port left (EADDRINUSE/EADDRNOTAVAIL on every address tried)");
        _stalls = meter.CreateCounter<long>("bindproxy.connections.stalls", "{event}",
            "Connections found with bytes waiting in one direction and no progress for the stall timeout although that side could take them (a defect), by route");
        _faultsApplied = meter.CreateCounter<long>("bindproxy.faults.applied", "{event}",
            "Toxics applied, by route, toxic name and type: a byte toxic once per connection (direction) it applies to");
        _kafkaRequests = meter.CreateCounter<long>("bindproxy.kafka.requests", "{request}",
            "Kafka requests forwarded, by route, API and the first error of the response (none; unanswered: the connection ended first; undecoded: nobody watched the client and the route does not set DecodeBodies)");
        _kafkaDuration = meter.CreateHistogram("bindproxy.kafka.request.duration", "s",
            "Kafka requests: time from the request to its response, by route and API",
            tags: null, advice: new InstrumentAdvice<double> { HistogramBucketBoundaries = KafkaBuckets });
        _httpResponses = meter.CreateCounter<long>("bindproxy.http.responses", "{response}",
            "Http routes: responses sent to clients, by route, status code and whether the upstream or the proxy (502, 503, 504) gave it");
        meter.CreateObservableCounter("bindproxy.forwarded", ObserveBytes, "By",
            "Bytes handed to the kernel for the peer, by route and direction (to_upstream, to_client); live connections included");
        meter.CreateObservableUpDownCounter("bindproxy.descriptors.used", () => descriptors.InUse, "{descriptor}",
            "Descriptors held by proxy listeners and Tcp/Kafka connections (connecting ones included)");
        if (descriptors.Limit is not null)
        {
            meter.CreateObservableUpDownCounter("bindproxy.descriptors.budget", () => descriptors.Capacity, "{descriptor}",
                "Descriptors listeners and connections may hold together: the open-files limit less those open at startup and a reserve; clients past it are refused (rejected, reason descriptor_limit)");
        }

        descriptors.Refused += route => Rejected(route, "descriptor_limit");
    }

    public void Opened(ProxiedConnection connection, TimeSpan connectTime)
    {
        var route = new KeyValuePair<string, object?>("route", connection.Route);
        _opened.Add(1, route);
        _connectDuration.Record(connectTime.TotalSeconds, route, new KeyValuePair<string, object?>("result", "connected"));
    }

    public void Closed(ProxiedConnection connection, CloseReason reason) => Closed(connection, Tag(reason));

    /// <summary>An Http route's connection pool closed an upstream connection it no longer needed (idle, or its request ended early).</summary>
    public void ClosedByPool(ProxiedConnection connection) => Closed(connection, "pool_closed");

    private void Closed(ProxiedConnection connection, string reason)
    {
        AddBytes(connection);

        var route = new KeyValuePair<string, object?>("route", connection.Route);
        _closed.Add(1, route, new KeyValuePair<string, object?>("reason", reason));
    }

    /// <summary>An Http route sent a response with <paramref name="statusCode"/>, from the upstream or made by the proxy (502, 503, 504).</summary>
    public void Responded(string route, int statusCode, bool byProxy) =>
        _httpResponses.Add(1, new KeyValuePair<string, object?>("route", route), new KeyValuePair<string, object?>("code", StatusCodeLabels.Of(statusCode)),
            new KeyValuePair<string, object?>("from", byProxy ? "proxy" : "upstream"));

    public void ConnectFailed(string route, ConnectError error, TimeSpan elapsed)
    {
        var routeTag = new KeyValuePair<string, object?>("route", route);
        var errorTag = new KeyValuePair<string, object?>("error", Tag(error));
        _connectFailures.Add(1, routeTag, errorTag);
        _connectDuration.Record(elapsed.TotalSeconds, routeTag, new KeyValuePair<string, object?>("result", Tag(error)));
        if (error == ConnectError.SourcesExhausted)
        {
            _poolExhausted.Add(1, routeTag);
        }
    }

    /// <summary>A client closed before its upstream was tried; <paramref name="reason"/> is <c>max_connections</c>, <c>route_gone</c>, <c>descriptor_limit</c>, ...</summary>
    public void Rejected(string route, string reason) =>
        _rejected.Add(1, new KeyValuePair<string, object?>("route", route), new KeyValuePair<string, object?>("reason", reason));

    /// <summary>The stall watchdog found a connection of <paramref name="route"/> stalled.</summary>
    public void Stalled(string route) => _stalls.Add(1, new KeyValuePair<string, object?>("route", route));

    /// <summary>A toxic applied to a connection (or, for a Kafka toxic, to a request).</summary>
    public void FaultApplied(string route, string toxic, string type) =>
        _faultsApplied.Add(1, new KeyValuePair<string, object?>("route", route), new KeyValuePair<string, object?>("toxic", toxic), new KeyValuePair<string, object?>("type", type));

    /// <summary>
    /// A Kafka request completed (answered, sent without a response expected, or left unanswered);
    /// <paramref name="api"/> and <paramref name="error"/> come from fixed tables, so the series stay bounded.
    /// </summary>
    public void KafkaExchange(string route, string api, string error, TimeSpan? latency)
    {
        var routeTag = new KeyValuePair<string, object?>("route", route);
        var apiTag = new KeyValuePair<string, object?>("api", api);
        _kafkaRequests.Add(1, routeTag, apiTag, new KeyValuePair<string, object?>("error", error));
        if (latency is { } elapsed)
        {
            _kafkaDuration.Record(elapsed.TotalSeconds, routeTag, apiTag);
        }
    }

    private RouteBytes BytesOf(string route) => _bytes.GetOrAdd(route, _ => new RouteBytes());

    /// <summary>Adds what <paramref name="connection"/> forwarded since it was last counted to its route's totals.</summary>
    private void AddBytes(ProxiedConnection connection)
    {
        var totals = BytesOf(connection.Route);
        Interlocked.Add(ref totals.ToUpstream, Advance(ref connection.CountedToUpstream, connection.BytesToUpstream));
        Interlocked.Add(ref totals.ToClient, Advance(ref connection.CountedToClient, connection.BytesToClient));
    }

    /// <summary>Moves <paramref name="counted"/> up to <paramref name="now"/> (never down); returns by how much.</summary>
    private static long Advance(ref long counted, long now)
    {
        long seen = Volatile.Read(ref counted);
        while (now > seen)
        {
            long before = Interlocked.CompareExchange(ref counted, now, seen);
            if (before == seen)
            {
                return now - seen;
            }

            seen = before;
        }

        return 0;
    }

    /// <summary>Open connections of every route served now (0 for one with none), none for a route that is gone.</summary>
    private IEnumerable<Measurement<long>> ObserveActive()
    {
        var open = _connections.Snapshot().CountBy(c => c.Route, StringComparer.Ordinal).ToDictionary(StringComparer.Ordinal);
        return [.. _routes.All.Select(r => r.Name).Distinct(StringComparer.Ordinal)
            .Select(route => new Measurement<long>(open.GetValueOrDefault(route), new KeyValuePair<string, object?>("route", route)))];
    }

    private IEnumerable<Measurement<long>> ObserveBytes()
    {
        var live = _connections.Snapshot();
        foreach (var connection in live)
        {
            AddBytes(connection);
        }

        // A removed route's totals stop being reported (and kept) once its last connection is gone.
        var served = _routes.All.Select(r => r.Name).ToHashSet(StringComparer.Ordinal);
        var measurements = new List<Measurement<long>>(_bytes.Count * 2);
        foreach (var (route, bytes) in _bytes)
        {
            if (!served.Contains(route))
            {
                if (!live.Any(c => c.Route == route))
                {
                    _bytes.TryRemove(route, out _);
                }

                continue;
            }

            var routeTag = new KeyValuePair<string, object?>("route", route);
            measurements.Add(new Measurement<long>(Interlocked.Read(ref bytes.ToUpstream), routeTag, new KeyValuePair<string, object?>("direction", "to_upstream")));
            measurements.Add(new Measurement<long>(Interlocked.Read(ref bytes.ToClient), routeTag, new KeyValuePair<string, object?>("direction", "to_client")));
        }

        return measurements;
    }

    internal static string Tag(CloseReason reason) => reason switch
    {
        CloseReason.ClientClosed => "client_closed",
        CloseReason.UpstreamClosed => "upstream_closed",
        CloseReason.ClientReset => "client_reset",
        CloseReason.UpstreamReset => "upstream_reset",
        CloseReason.ConnectTimeout => "connect_timeout",
        CloseReason.ConnectRefused => "connect_refused",
        CloseReason.SourcesExhausted => "sources_exhausted",
        CloseReason.ConnectFailed => "connect_failed",
        CloseReason.ProxyAborted => "proxy_aborted",
        CloseReason.InternalError => "internal_error",
        CloseReason.IdleTimeout => "idle_timeout",
        CloseReason.FrameStalled => "frame_stalled",
        CloseReason.FlushTimeout => "flush_timeout",
        _ => "other",
    };

    internal static string Tag(ConnectError error) => error switch
    {
        ConnectError.Timeout => "timeout",
        ConnectError.Refused => "refused",
        ConnectError.SourcesExhausted => "sources_exhausted",
        ConnectError.Unresolved => "unresolved",
        ConnectError.Failed => "failed",
        ConnectError.Cancelled => "cancelled",
        ConnectError.NoDescriptors => "no_descriptors",
        _ => "other",
    };

    private sealed class RouteBytes
    {
        public long ToUpstream;
        public long ToClient;
    }
}
