using BindProxy.Configuration;
using BindProxy.Transport;

namespace BindProxy.Http;

/// <summary>Marks a connection as accepted on an Http route's listener, and names the route.</summary>
internal sealed record HttpRouteFeature(ServedRoute Route);
