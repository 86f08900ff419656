using System.Text.Json;
using System.Text.Json.Serialization;

namespace BindProxy.Admin;

/// <summary>One route of <c>GET /api/routes</c>: configured, or added at run time (a Kafka broker's listener).</summary>
internal sealed record RouteView(
    string Name,
    string Protocol,
    string Listen,
    IReadOnlyList<string> Bound,
    string Upstream,
    string Sources,
    long SourceCount,
    double ConnectTimeoutSeconds,
    int? MaxConnections,
    int ActiveConnections,
    string? Parent,
    string WiresharkFilter,
    string TsharkCommand,
    bool Runtime,
    IReadOnlyList<string> Toxics,
    RouteTlsView? Tls = null);

/// <summary>
/// A route's TLS, per side: what is configured toward the upstream and on the listener (null: that
/// side is plaintext), whether certificates go unverified, and what the latest connection on each
/// side negotiated (version, cipher, the peer certificate's subject and expiry).
/// </summary>
internal sealed record RouteTlsView(string? Upstream, string? Listener, bool Insecure, TlsPeerView? UpstreamPeer, TlsPeerView? ClientPeer);

/// <summary>One TLS session as negotiated: version, cipher, and the peer's certificate (subject, expiry) when it sent one.</summary>
internal sealed record TlsPeerView(string Version, string Cipher, string? Subject, DateTimeOffset? NotAfter);

/// <summary>One live proxied connection of <c>GET /api/connections</c>.</summary>
internal sealed record ConnectionView(
    long Id,
    string Route,
    string Client,
    string Listener,
    string ClientIdentity,
    string? KafkaClientId,
    string Source,
    string Upstream,
    long BytesToUpstream,
    long BytesToClient,
    double AgeSeconds,
    string State,
    long? KafkaRequests,
    string WiresharkFilter,
    string CaptureQuery,
    string? OriginalDestination = null,
    int? ClientPid = null,
    string? ClientCommand = null,
    bool Stalled = false);

/// <summary>
/// One client → source address pair of <c>GET /api/assignments</c>, with filters that isolate it
/// and the <c>/api/capture</c> query that picks its connections.
/// </summary>
internal sealed record AssignmentView(
    string Client,
    string IdentityKind,
    string Source,
    IReadOnlyList<string> Routes,
    IReadOnlyList<int> UpstreamPorts,
    int Connections,
    long BytesToUpstream,
    long BytesToClient,
    string WiresharkFilter,
    string TsharkCommand,
    string CaptureQuery);

/// <summary>Everything the status page shows, in one poll.</summary>
internal sealed record StatusView(
    DateTimeOffset Time,
    double UptimeSeconds,
    IReadOnlyList<RouteView> Routes,
    IReadOnlyList<ConnectionView> Connections,
    IReadOnlyList<AssignmentView> Assignments);

/// <summary>Source-generated JSON for the admin API (camelCase, no reflection).</summary>
[JsonSourceGenerationOptions(JsonSerializerDefaults.Web)]
[JsonSerializable(typeof(IReadOnlyList<RouteView>))]
[JsonSerializable(typeof(IReadOnlyList<ConnectionView>))]
[JsonSerializable(typeof(IReadOnlyList<AssignmentView>))]
[JsonSerializable(typeof(StatusView))]
[JsonSerializable(typeof(KafkaRequestView))]
[JsonSerializable(typeof(IReadOnlyList<KafkaRequestView>))]
[JsonSerializable(typeof(KafkaConversationsView))]
internal sealed partial class AdminJsonContext : JsonSerializerContext;
