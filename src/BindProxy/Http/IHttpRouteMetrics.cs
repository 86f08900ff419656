using BindProxy.Forwarding;
using BindProxy.Outbound;
using BindProxy.Transport;

namespace BindProxy.Http;

/// <summary>
/// What Http routes report to the proxy's metrics, in the terms Tcp routes use where they mean the
/// same: an Http route's proxied connection is an upstream connection (the one that leaves from a
/// source address), so it opens, closes and fails to connect like a Tcp route's; responses are
/// counted on top. Implemented by the metrics in the admin layer, which sits above this one.
/// </summary>
internal interface IHttpRouteMetrics
{
    void Opened(ProxiedConnection connection, TimeSpan connectTime);

    void Closed(ProxiedConnection connection, CloseReason reason);

    /// <summary>The proxy's connection pool closed an upstream connection it no longer needed (idle, or its request ended early).</summary>
    void ClosedByPool(ProxiedConnection connection);

    void ConnectFailed(string route, ConnectError error, TimeSpan elapsed);

    /// <summary>A response went to the client with <paramref name="statusCode"/>, from the upstream or made by the proxy (502, 503, 504).</summary>
    void Responded(string route, int statusCode, bool byProxy);
}
