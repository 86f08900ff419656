using BindProxy.Addressing;

namespace BindProxy.Configuration;

/// <summary>
/// A route that serves intercepted connections: netfilter redirects the TCP connections of the
/// processes <see cref="Selector"/> picks, to destination ports in <see cref="Ports"/>, to the
/// route's listener, and each one's upstream is its own original destination (not the route's
/// <c>Upstream</c>), re-originated from the route's source addresses.
/// </summary>
/// <param name="Ports">The destination ports redirected at the start; a Kafka route adds every broker port it sees.</param>
internal sealed record InterceptSettings(PortSet Ports, InterceptSelector Selector);
