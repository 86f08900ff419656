using System.Diagnostics;
using System.Net;
using System.Runtime.Versioning;
using BindProxy.Addressing;
using BindProxy.Configuration;
using BindProxy.Outbound;
using BindProxy.Transport;
using BindProxy.Transport.Linux;
using Microsoft.AspNetCore.Connections;

namespace BindProxy.Forwarding;

/// <summary>
/// The relay engine's forwarder: forwards a plain Tcp connection its listener accepted as a bare
/// descriptor (<see cref="DescriptorInbound"/>) on a <see cref="TcpRelay"/>, which then runs on its
/// own on a <see cref="RelayEngine"/> loop. Which connections come here is
/// <see cref="ForwardingPath"/>'s rule.
/// </summary>
[SupportedOSPlatform("linux")]
internal sealed class RelayForwarder(
    UpstreamConnector connector,
    RelayEngine relays,
    ConnectionRegistry registry,
    InterceptedConnections interceptions,
    ConnectionLifecycle lifecycle,
    HandoffFaults? faults = null) : IConnectionForwarder, IRelayOwner
{
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
        var relay = new TcpRelay(relays.NextLoop(), client, reservation, inbound.Client, inbound.Listener);
        ProxiedConnection live;
        try
        {
            var connect = await connector.ConnectAsync(route, intercepted?.OriginalDestination, lease?.Assignment.Address, s_connectRaw, (relays, client), connection.ConnectionClosed).ConfigureAwait(false);
            if (!connect.IsConnected)
            {
                lifecycle.ConnectFailed(route, inbound.Client, connect.Error, connect.Detail, connect.Elapsed, client);
                return false;
            }

            var upstream = connect.Connection!;
            IPEndPoint source;
            try
            {
                faults?.At(HandoffStep.Connected);
                source = RawSocket.LocalEndPoint(upstream);
            }
            catch
            {
                upstream.CloseAbortive();
                throw;
            }

            relay.Connected(upstream, source, connect.Upstream!);
            var who = intercepted is null ? null : await interceptions.OpenedAsync(route.Name, intercepted, inbound.Client, source).ConfigureAwait(false);
            live = lifecycle.Add(served, route, relay, lease, who, fromStart: true);
            try
            {
                faults?.At(HandoffStep.Registered);
                lifecycle.Opened(live, connect.Elapsed);
            }
            catch
            {
                live.Lease = null; // the caller gives the lease back
                lifecycle.Remove(live);
                throw;
            }

            // From here the relay runs on its own loop and ends on its own; a drain that ended
            // meanwhile resets it once it has started.
            relay.Start(this, live);
        }
        finally
        {
            relay.Discard(); // only while still connecting: a started relay is the loop's
        }

        lifecycle.AbortIfTooLate(live);
        return true;
    }

    public void OnRelayClosed(TcpRelay relay, object? state, CloseReason reason)
    {
        // On the thread pool, once per relay. The connection leaves the registry after its line, so
        // a shutdown that waits for the registry to empty does not end the process before the line
        // is written.
        var connection = (ProxiedConnection)state!;
        var route = connection.RouteModel;
        reason = connection.ProxyReason ?? reason;
        try
        {
            lifecycle.Closed(connection, reason);
            connection.Lease?.Dispose();
            registry.LeaveClient(connection.Served.Root, relay.Client.Address);
            connection.Served.LeaveConnection();
            if (lifecycle.LogsClosings)
            {
                lifecycle.LogClosed(connection, reason, Stopwatch.GetElapsedTime(connection.StartedTimestamp).TotalMilliseconds, "");
            }
        }
        finally
        {
            lifecycle.Remove(connection);
        }
    }
}
