using BindProxy.Addressing;
using BindProxy.Configuration;
using BindProxy.Transport;
using Microsoft.AspNetCore.Connections;

namespace BindProxy.Forwarding;

/// <summary>
/// Forwards an accepted connection once <see cref="ProxyConnectionHandler"/> has settled what every
/// connection needs (limits, interception, source): connects its upstream and moves the bytes. The
/// host registers one, chosen once at startup from the <see cref="ForwardingEngine"/>:
/// <see cref="PipeForwarder"/>, which runs everywhere, or <see cref="RelayForwarder"/> for the
/// Linux relay engine.
/// </summary>
internal interface IConnectionForwarder
{
    /// <summary>
    /// Forwards <paramref name="connection"/>, which arrived on <paramref name="served"/> and keeps
    /// <paramref name="route"/> for its lifetime, from <paramref name="lease"/>'s address when it
    /// has one, to <paramref name="intercepted"/>'s original destination when it was redirected.
    /// False when the connection has ended within this call (closed, or refused and reset): the
    /// caller still holds the lease and the route's connection counts and gives them back. True
    /// when it now runs on its own: its close gives them back.
    /// </summary>
    Task<bool> ForwardAsync(ConnectionContext connection, ServedRoute served, RouteModel route, IInboundSocketFeature inbound,
        AssignmentLease? lease, PendingInterception? intercepted);
}
