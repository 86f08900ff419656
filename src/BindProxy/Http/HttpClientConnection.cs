using BindProxy.Configuration;
using BindProxy.Forwarding;
using BindProxy.Transport;
using Microsoft.AspNetCore.Connections;
using Microsoft.AspNetCore.Connections.Features;

namespace BindProxy.Http;

/// <summary>A client's connection to an Http route, while Kestrel serves it: what the drain asks to close and, past its time, resets.</summary>
internal sealed class HttpClientConnection(ServedRoute served, ConnectionContext connection) : IDrainable
{
    private readonly TaskCompletionSource _closed = new(TaskCreationOptions.RunContinuationsAsynchronously);

    public ServedRoute Served => served;

    public Task WhenClosed() => _closed.Task;

    /// <summary>Kestrel closes a keep-alive HTTP/1.1 connection after the request in hand, and sends HTTP/2 GOAWAY.</summary>
    public void RequestClose() => connection.Features.Get<IConnectionLifetimeNotificationFeature>()?.RequestClose();

    public void Abort() => connection.Abort(new ConnectionAbortedException($"route {served.Name}: its drain is over"));

    internal void MarkClosed() => _closed.TrySetResult();
}
