using BindProxy.Configuration;

namespace BindProxy.Http;

/// <summary>The invoker of one route model and the URI prefix its requests go to.</summary>
internal sealed record RouteClient(RouteModel Route, HttpMessageInvoker Invoker, string DestinationPrefix);
