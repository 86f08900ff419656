using BindProxy.Configuration;
using BindProxy.Faults;

namespace BindProxy.Forwarding;

/// <summary>
/// Which forwarder serves a connection: the one rule. A connection whose bytes the proxy reads as
/// a stream takes the pipe path (<see cref="PipeForwarder"/>) whatever the engine; every other one
/// takes the forwarder of the engine chosen at startup, which on Linux is the relay engine.
/// </summary>
internal static class ForwardingPath
{
    /// <summary>
    /// True when the proxy reads the connection's bytes as a stream: a Kafka route parses its frames
    /// (and rewrites broker addresses in responses); a route with TLS on either side encrypts and
    /// decrypts them; a route with a toxic passes them through it. A route with none of these
    /// pays nothing for them.
    /// </summary>
    public static bool NeedsStream(RouteModel route, RouteFaults? faults = null) =>
        route.Kafka is not null || route.Tls is not null || route.ListenTls is not null || faults is { HasToxics: true };
}
