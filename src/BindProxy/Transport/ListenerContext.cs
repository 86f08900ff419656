using System.Net;
using Microsoft.Extensions.Logging;

namespace BindProxy.Transport;

/// <summary>What every listener of a <see cref="RouteListenerFactory"/> shares.</summary>
internal sealed record ListenerContext(RouteEndPoint Endpoint, TransportOptions Options, ListenerRegistry Registry, DescriptorBudget Budget, ILogger Logger);
