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
/// The relay engine: forwards a plain Tcp connection accepted as a bare descriptor on a
/// <see cref="TcpRelay"/>, which then runs on its own on a <see cref="RelayEngine"/> loop. Kafka
/// routes (they parse what they forward) and a client already read through its pipe (a client.id
/// peek) go to the <see cref="PipeForwarder"/>.
/// </summary>
[SupportedOSPlatform("linux")]
internal sealed class RelayForwarder(
    UpstreamConnector connector,
    RelayEngine relays,
    PipeForwarder pipes,
    ConnectionRegistry registry,
    InterceptedConnections interceptions,
    ConnectionLifecycle lifecycle,
    HandoffFaults? faults = null) : IConnectionForwarder, IRelayOwner
{
    private static readonly Func<IPAddress, IPEndPoint, ConnectDeadline, (RelayEngine Relays, SocketHandle Client), ValueTask<SocketHandle>> s_connectRaw =
        static (source, destination, deadline, state) => state.Relays.ConnectAsync(source, destination, deadline, state.Client);

    public Task<bool> ForwardAsync(ConnectionContext connection, ServedRoute served, RouteModel route, IInboundSocketFeature inbound,
        AssignmentLease? lease, PendingInterception? intercepted) =>
        route.Kafka is null && inbound.TryDetach(out var client, out var reservation)
            ? RelayAsync(connection, served, route, inbound, client, reservation, lease, intercepted)
            : pipes.ForwardAsync(connection, served, route, inbound, lease, intercepted);

    /// <summary>
    /// Connects upstream and starts a <see cref="TcpRelay"/>; false (client reset) when the connect
    /// failed. Until the relay takes them, this owns the client's socket, the upstream one and the
    /// descriptors reserved for them, and releases all three on every way out, exceptions included.
    /// </summary>
    private async Task<bool> RelayAsync(ConnectionContext connection, ServedRoute served, RouteModel route, IInboundSocketFeature inbound,
        SocketHandle client, DescriptorReservation reservation, AssignmentLease? lease, PendingInterception? intercepted)
    {
        SocketHandle? upstream = null;
        TcpRelay? relay = null;
        try
        {
            var connect = await connector.ConnectAsync(route, intercepted?.OriginalDestination, lease?.Assignment.Address, s_connectRaw, (relays, client), connection.ConnectionClosed).ConfigureAwait(false);
            if (!connect.IsConnected)
            {
                lifecycle.ConnectFailed(route, inbound.Client, connect.Error, connect.Detail, connect.Elapsed, client);
                return false;
            }

            upstream = connect.Connection!;
            faults?.At(HandoffStep.Connected);
            var source = RawSocket.LocalEndPoint(upstream);
            var who = intercepted is null ? null : await interceptions.OpenedAsync(route.Name, intercepted, inbound.Client, source).ConfigureAwait(false);
            relay = new TcpRelay(relays.NextLoop(), client, upstream, reservation, inbound.Client, inbound.Listener, source, connect.Upstream!);
            var live = lifecycle.Add(served, route, relay, lease, who);
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

            // From here the relay owns both sockets and the reservation, and ends on its own.
            relay.Start(this, live);
            lifecycle.AbortIfTooLate(live);
            return true;
        }
        catch when (relay is not null)
        {
            relay.Discard();
            throw;
        }
        finally
        {
            if (relay is null)
            {
                client.CloseAbortive();
                upstream?.CloseAbortive();
                reservation.Return();
            }
        }
    }

    public void OnRelayClosed(TcpRelay relay, object? state, CloseReason reason)
    {
        var connection = (ProxiedConnection)state!;
        var route = connection.RouteModel;
        reason = connection.ProxyReason ?? reason;
        lifecycle.Closed(connection, reason);
        connection.Lease?.Dispose();
        registry.LeaveClient(route.Root.Name, relay.Client.Address);
        registry.Leave(route.Name);
        if (!lifecycle.LogsClosings)
        {
            lifecycle.Remove(connection);
            return;
        }

        // This usually runs on the relay's loop; the log line is written off it. The connection
        // leaves the registry after its line, so a shutdown that waits for the registry to empty
        // does not end the process before the line is written.
        double durationMs = Stopwatch.GetElapsedTime(connection.StartedTimestamp).TotalMilliseconds;
        ThreadPool.UnsafeQueueUserWorkItem(_ =>
        {
            lifecycle.LogClosed(connection, reason, durationMs, "");
            lifecycle.Remove(connection);
        }, null);
    }
}
