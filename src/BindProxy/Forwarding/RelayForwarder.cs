using System.Diagnostics;
using System.Net;
using System.Runtime.Versioning;
using BindProxy.Addressing;
using BindProxy.Configuration;
using BindProxy.Faults;
using BindProxy.Outbound;
using BindProxy.Transport;
using BindProxy.Transport.Linux;
using Microsoft.AspNetCore.Connections;
using Microsoft.Extensions.Logging;

namespace BindProxy.Forwarding;

/// <summary>
/// The relay engine's forwarder: forwards a plain Tcp connection its listener accepted as a bare
/// descriptor (<see cref="DescriptorInbound"/>) on a <see cref="TcpRelay"/>, which then runs on its
/// own on a <see cref="RelayEngine"/> loop. Which connections come here is
/// <see cref="ForwardingPath"/>'s rule.
/// </summary>
/// <remarks>
/// When a route gains a toxic, its connections on relays move to the pipe path, as if they had
/// opened with the toxic on (toxiproxy's toxics reach open connections): each relay hands over its
/// sockets, held bytes and counts (<see cref="TcpRelay.RequestMove"/>), and the same registered
/// connection goes on through <see cref="PipeForwarder.ContinueMovedAsync"/>. A route without
/// toxics pays nothing for it: the trigger is the change of the route's toxics, not the data.
/// </remarks>
[SupportedOSPlatform("linux")]
internal sealed partial class RelayForwarder : IConnectionForwarder, IRelayOwner
{
    private readonly UpstreamConnector _connector;
    private readonly RelayEngine _relays;
    private readonly ConnectionRegistry _registry;
    private readonly InterceptedConnections _interceptions;
    private readonly ConnectionLifecycle _lifecycle;
    private readonly PipeForwarder _pipes;
    private readonly FaultTable _toxics;
    private readonly TransportOptions _options;
    private readonly ILogger<RelayForwarder> _logger;
    private readonly HandoffFaults? _faults;

    public RelayForwarder(UpstreamConnector connector, RelayEngine relays, ConnectionRegistry registry, InterceptedConnections interceptions,
        ConnectionLifecycle lifecycle, PipeForwarder pipes, FaultTable toxics, TransportOptions options, ILogger<RelayForwarder> logger, HandoffFaults? faults = null)
    {
        _connector = connector;
        _relays = relays;
        _registry = registry;
        _interceptions = interceptions;
        _lifecycle = lifecycle;
        _pipes = pipes;
        _toxics = toxics;
        _options = options;
        _logger = logger;
        _faults = faults;
        toxics.Changed += OnToxicsChanged;
    }

    private static readonly Func<IPAddress, IPEndPoint, ConnectDeadline, (RelayEngine Relays, SocketHandle Client), ValueTask<SocketHandle>> s_connectRaw =
        static (source, destination, deadline, state) => state.Relays.ConnectAsync(source, destination, deadline, state.Client);

    public Task<bool> ForwardAsync(ConnectionContext connection, ServedRoute served, RouteModel route, IInboundSocketFeature inbound,
        AssignmentLease? lease, PendingInterception? intercepted) =>
        inbound is DescriptorInbound accepted && accepted.TryDetach(out var client, out var reservation)
            ? RelayAsync(connection, served, route, inbound, client, reservation, lease, intercepted)
            : throw new InvalidOperationException($"route {route.Name}: the relay engine forwards connections its own listeners accepted and nothing has read, not {inbound.GetType().Name}");

    /// <summary>
    /// Connects upstream and starts a <see cref="TcpRelay"/>; false (client reset) when the connect
    /// failed. The relay owns the client's socket and the descriptors reserved for the connection
    /// from the start, and the upstream socket once connected; until it starts, every way out of
    /// here, exceptions included, discards it, which releases all three.
    /// </summary>
    private async Task<bool> RelayAsync(ConnectionContext connection, ServedRoute served, RouteModel route, IInboundSocketFeature inbound,
        SocketHandle client, DescriptorReservation reservation, AssignmentLease? lease, PendingInterception? intercepted)
    {
        var relay = new TcpRelay(_relays.NextLoop(), client, reservation, inbound.Client, inbound.Listener);
        ProxiedConnection live;
        try
        {
            var connect = await _connector.ConnectAsync(route, intercepted?.OriginalDestination, lease?.Assignment.Address, s_connectRaw, (_relays, client), connection.ConnectionClosed).ConfigureAwait(false);
            if (!connect.IsConnected)
            {
                _lifecycle.ConnectFailed(route, inbound.Client, connect.Error, connect.Detail, connect.Elapsed, client);
                return false;
            }

            var upstream = connect.Connection!;
            IPEndPoint source;
            try
            {
                _faults?.At(HandoffStep.Connected);
                source = RawSocket.LocalEndPoint(upstream);
            }
            catch
            {
                upstream.CloseAbortive();
                throw;
            }

            relay.Connected(upstream, source, connect.Upstream!);
            var who = intercepted is null ? null : await _interceptions.OpenedAsync(route.Name, intercepted, inbound.Client, source).ConfigureAwait(false);
            live = _lifecycle.Add(served, route, relay, lease, who, fromStart: true);
            try
            {
                _faults?.At(HandoffStep.Registered);
                _lifecycle.Opened(live, connect.Elapsed);
            }
            catch
            {
                live.Lease = null; // the caller gives the lease back
                _lifecycle.Remove(live);
                throw;
            }

            // From here the relay runs on its own loop and ends on its own; a drain that ended
            // meanwhile resets it once it has started.
            relay.Start(this, live);

            // A toxic added since the path was chosen, before the connection was registered where
            // the change looks for it: it moves at once.
            if (_toxics.Find(route.Name) is { } routeFaults && CouldHit(routeFaults, inbound.Client))
            {
                relay.RequestMove();
            }
        }
        finally
        {
            relay.Discard(); // only while still connecting: a started relay is the loop's
        }

        _lifecycle.AbortIfTooLate(live);
        return true;
    }

    public void OnRelayClosed(TcpRelay relay, object? state, CloseReason reason) => Finish((ProxiedConnection)state!, reason);

    /// <summary>
    /// A closed connection, once, on the thread pool: counted, its lease and counts released, its
    /// line written. It leaves the registry after its line, so a shutdown that waits for the
    /// registry to empty does not end the process before the line is written.
    /// </summary>
    private void Finish(ProxiedConnection connection, CloseReason reason)
    {
        reason = connection.ProxyReason ?? reason;
        try
        {
            _lifecycle.Closed(connection, reason);
            connection.Lease?.Dispose();
            _registry.LeaveClient(connection.Served.Root, connection.Client.Address);
            connection.Served.LeaveConnection();
            if (_lifecycle.LogsClosings)
            {
                _lifecycle.LogClosed(connection, reason, Stopwatch.GetElapsedTime(connection.StartedTimestamp).TotalMilliseconds, "");
            }
        }
        finally
        {
            _lifecycle.Remove(connection);
        }
    }

    /// <summary>
    /// A route's toxics changed: when it has some now, its connections on relays that one of them
    /// could hit move to the pipe path (<see cref="CouldHit"/>); the toxics are matched there as
    /// for a connection opened now. Removing toxics moves nothing back.
    /// </summary>
    private void OnToxicsChanged(RouteFaults route)
    {
        if (!route.HasToxics)
        {
            return;
        }

        foreach (var live in _registry.Snapshot())
        {
            if (live.Legs is TcpRelay relay && string.Equals(live.Route, route.Route, StringComparison.Ordinal) && CouldHit(route, relay.Client))
            {
                relay.RequestMove();
            }
        }
    }

    /// <summary>
    /// Whether one of the route's toxics could hit a relay connection from <paramref name="client"/>:
    /// one without a <c>match</c>, or whose match its address does not rule out. A process part is
    /// not looked up here (the change's thread must not scan <c>/proc</c>): such a toxic moves the
    /// connection, and the pipe path matches it. A connection none could hit stays and pays nothing.
    /// </summary>
    private static bool CouldHit(RouteFaults route, IPEndPoint client)
    {
        foreach (var toxic in route.Snapshot)
        {
            if (toxic.Match is not { } match || match.CouldMatch(client))
            {
                return true;
            }
        }

        return false;
    }

    public void OnRelayMoved(TcpRelay relay, object? state, RelayHandover handover) =>
        _ = ContinueOnPipesAsync((ProxiedConnection)state!, relay, handover);

    /// <summary>
    /// Serves a moved relay's connection to its end on the pipe path: its descriptors as .NET
    /// sockets with the relay's counts, the registered connection switched to them (its capture
    /// tap with it), then <see cref="PipeForwarder.ContinueMovedAsync"/>; then closed as any
    /// relay connection is. Never throws: it is the connection's only owner from here.
    /// </summary>
    private async Task ContinueOnPipesAsync(ProxiedConnection live, TcpRelay relay, RelayHandover handover)
    {
        var reason = CloseReason.InternalError;
        PipeSocket? client = null;
        PipeSocket? upstream = null;
        try
        {
            client = Wrap(handover.Client, relay.Listener, relay.Client);
            upstream = Wrap(handover.Upstream, relay.Source, relay.Upstream);

            client.ContinueCounts(handover.ClientReceived, handover.ClientSent);
            upstream.ContinueCounts(handover.UpstreamReceived, handover.UpstreamSent);
            var legs = new PipeLegs(client, upstream);
            if (!_lifecycle.SwitchLegs(live, relay, legs))
            {
                throw new InvalidOperationException($"connection {live.Id} was not on its relay when it moved");
            }

            Log.Moved(_logger, live.Route, live.Client, live.Source, live.Upstream, handover.HeldForUpstream.Length, handover.HeldForClient.Length);
            client.StartReceiving();
            upstream.StartReceiving();
            if (live.ProxyReason is not null)
            {
                legs.Abort(); // aborted while it moved
            }

            reason = await _pipes.ContinueMovedAsync(live.RouteModel, client, upstream, handover.HeldForUpstream, handover.HeldForClient).ConfigureAwait(false);
        }
        catch (Exception e)
        {
            Log.MoveFailed(_logger, e, live.Route, live.Client);
            client?.Abort();
            upstream?.Abort();
            handover.Client.CloseAbortive(); // each a no-op once a .NET socket has it
            handover.Upstream.CloseAbortive();
        }
        finally
        {
            try
            {
                if (client is not null)
                {
                    await client.DisposeAsync().ConfigureAwait(false);
                }

                if (upstream is not null)
                {
                    await upstream.DisposeAsync().ConfigureAwait(false);
                }
            }
            finally
            {
                handover.Reservation.Return();
                Finish(live, reason);
            }
        }
    }

    /// <summary>A relay's descriptor as a .NET socket, as <see cref="DescriptorInbound"/> makes one; the socket owns it from here.</summary>
    private PipeSocket Wrap(SocketHandle handle, IPEndPoint local, IPEndPoint remote)
    {
        var socket = handle.ToSafeSocketHandle();
        try
        {
            return new PipeSocket(new System.Net.Sockets.Socket(socket), _options, local, remote);
        }
        catch
        {
            socket.Dispose();
            throw;
        }
    }

    private static partial class Log
    {
        [LoggerMessage(213, LogLevel.Debug, "{Route}: {Client} → {Source} → {Upstream} moved from its relay to the pipe path (its route has toxics now), {HeldForUpstream} B held for the upstream and {HeldForClient} B for the client")]
        public static partial void Moved(ILogger logger, string route, IPEndPoint client, IPEndPoint source, IPEndPoint upstream, int heldForUpstream, int heldForClient);

        [LoggerMessage(214, LogLevel.Error, "{Route}: {Client}: moving from its relay to the pipe path failed; the connection is reset (internal error)")]
        public static partial void MoveFailed(ILogger logger, Exception exception, string route, IPEndPoint client);
    }
}
