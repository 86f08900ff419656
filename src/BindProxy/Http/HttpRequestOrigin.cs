using System.Net;

namespace BindProxy.Http;

/// <summary>Where a request came from: the client's address and the route listener it arrived on.</summary>
internal sealed record HttpRequestOrigin(IPEndPoint Client, IPEndPoint Listener);
