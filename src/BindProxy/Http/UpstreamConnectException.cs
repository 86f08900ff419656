using BindProxy.Outbound;

namespace BindProxy.Http;

/// <summary>
/// Carries a failed <see cref="ConnectResult{T}"/> out of <see cref="SocketsHttpHandler.ConnectCallback"/>,
/// the one place an HTTP client takes errors only as exceptions. The forwarder reports it as 502.
/// </summary>
internal sealed class UpstreamConnectException(string route, ConnectResult<System.Net.Sockets.Socket> result)
    : IOException($"{Describe(result.Error)}: {result.Detail}")
{
    public string Route { get; } = route;

    public ConnectResult<System.Net.Sockets.Socket> Result { get; } = result;

    private static string Describe(ConnectError error) => error switch
    {
        ConnectError.Timeout => "connect timeout",
        ConnectError.Refused => "connect refused",
        ConnectError.SourcesExhausted => "source addresses exhausted",
        ConnectError.Unresolved => "upstream not resolved",
        ConnectError.Cancelled => "connect cancelled",
        _ => "connect failed",
    };
}
