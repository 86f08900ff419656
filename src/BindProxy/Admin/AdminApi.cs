using System.Diagnostics;
using BindProxy.Addressing;
using BindProxy.Configuration;
using BindProxy.Faults;
using BindProxy.Forwarding;
using BindProxy.Transport;
using BindProxy.Wireshark;

namespace BindProxy.Admin;

/// <summary>Builds the admin API's views from the proxy's live state; every call is a fresh snapshot.</summary>
internal sealed class AdminApi(RouteTable routes, ListenerRegistry listeners, ConnectionRegistry connections, IClientAssignments assignments, FaultTable faults)
{
    private readonly long _started = Stopwatch.GetTimestamp();

    /// <summary>The configured routes in the configuration's order, then the routes they opened (Kafka broker listeners) by name.</summary>
    public IReadOnlyList<RouteView> Routes() =>
        [.. routes.Roots.Concat(routes.Roots.SelectMany(r => r.Members).OrderBy(r => r.Name, StringComparer.Ordinal)).Select(ToView)];

    public IReadOnlyList<ConnectionView> Connections() =>
        [.. connections.Snapshot().OrderBy(c => c.Id).Select(ToView)];

    public IReadOnlyList<AssignmentView> Assignments() => assignments.Current();

    public StatusView Status() => new(
        DateTimeOffset.UtcNow,
        Math.Round(Stopwatch.GetElapsedTime(_started).TotalSeconds, 1),
        Routes(),
        Connections(),
        Assignments());

    private RouteView ToView(ServedRoute served)
    {
        var route = served.Model;
        return new(
            route.Name,
            route.Protocol.ToString(),
            route.Listen.Text,
            [.. listeners.For(served).Select(e => e.ToString())],
            route.Upstream.Text,
            route.Sources.Addresses.ToString(),
            route.Sources.Addresses.Count,
            route.ConnectTimeout.TotalSeconds,
            route.MaxConnections,
            served.Connections,
            served.IsRoot ? null : served.Root.Name,
            route.WiresharkFilter,
            route.TsharkCommand,
            served.IsRuntime,
            faults.Find(route.Name) is { } routeFaults
                ? [.. routeFaults.Toxics.Select(t => $"{t.Name}: {t.Describe()}{(t.IsFromFile ? " (from the configuration file)" : "")}"), .. routeFaults.Enabled ? Array.Empty<string>() : ["disabled: not listening"]]
                : [],
            route.Tls is null && route.ListenTls is null ? null : new RouteTlsView(
                route.Tls?.Describe(),
                route.ListenTls?.Describe(),
                route.Tls?.Insecure ?? false,
                Peer(served.LastUpstreamTls),
                Peer(served.LastClientTls)));
    }

    private static TlsPeerView? Peer(TlsSession? session) =>
        session is null ? null : new(session.Version, session.Cipher, session.PeerSubject, session.PeerNotAfter);

    private static ConnectionView ToView(ProxiedConnection connection)
    {
        var (identity, _) = LiveConnectionAssignments.Identity(connection);
        return new ConnectionView(
            connection.Id,
            connection.Route,
            connection.Client.ToString(),
            connection.Listener.ToString(),
            identity,
            connection.Kafka?.ClientId,
            connection.Source.ToString(),
            connection.Upstream.ToString(),
            connection.BytesToUpstream,
            connection.BytesToClient,
            Math.Round(Stopwatch.GetElapsedTime(connection.StartedTimestamp).TotalSeconds, 3),
            State(connection),
            connection.Kafka?.RequestCount,
            // The source port tells this connection's upstream leg apart from every other one.
            CaptureFilters.Wireshark(connection.Source.Address, [connection.Source.Port]),
            FormattableString.Invariant($"connection={connection.Id}"),
            connection.Intercepted?.OriginalDestination.ToString(),
            connection.Intercepted?.Pid,
            connection.Intercepted?.CommandLine,
            connection.IsStalled);
    }

    /// <summary>open, half-closed by one side (its FIN passed on, the other direction still flowing), flushing (both ended, sent bytes not yet acknowledged), or closing.</summary>
    internal static string State(ProxiedConnection connection) => connection.Legs.State;
}
