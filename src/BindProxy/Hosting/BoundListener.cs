using BindProxy.Configuration;
using BindProxy.Transport;
using Microsoft.AspNetCore.Connections;

namespace BindProxy.Hosting;

/// <summary>A listener opened for a route, for the accept loop: Http routes' connections go to Kestrel's HTTP pipeline, the others to the proxy's handler.</summary>
internal sealed record BoundListener(ServedRoute Route, IConnectionListener Listener, bool IsHttp);
