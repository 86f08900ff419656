using System.IO.Pipelines;
using System.Net;
using Microsoft.AspNetCore.Connections;
using Microsoft.AspNetCore.Http.Features;

namespace BindProxy.Transport;

/// <summary>Gives a connection handler the accepted socket and the route it arrived on.</summary>
internal interface IInboundSocketFeature
{
    string Route { get; }

    PipeSocket Socket { get; }
}

/// <summary>An accepted proxy connection as Kestrel sees it.</summary>
internal sealed class InboundConnection : ConnectionContext, IInboundSocketFeature
{
    private static long s_nextId;

    private readonly CancellationTokenSource _closed = new();
    private IDuplexPipe? _transport;

    public InboundConnection(PipeSocket socket, string route)
    {
        Socket = socket;
        Route = route;
        ConnectionId = Interlocked.Increment(ref s_nextId).ToString("x", System.Globalization.CultureInfo.InvariantCulture);
        Features = new FeatureCollection();
        Features.Set<IInboundSocketFeature>(this);
        LocalEndPoint = socket.LocalEndPoint;
        RemoteEndPoint = socket.RemoteEndPoint;
    }

    public string Route { get; }

    public PipeSocket Socket { get; }

    public override string ConnectionId { get; set; }

    public override IFeatureCollection Features { get; }

    public override IDictionary<object, object?> Items { get; set; } = new Dictionary<object, object?>();

    /// <summary>
    /// A stream-backed pipe pair for code that wants the classic Kestrel shape. The forwarder does
    /// not use it: it sends from the other side's buffers through <see cref="Socket"/> directly.
    /// </summary>
    public override IDuplexPipe Transport
    {
        get => _transport ??= new StreamDuplexPipe(Socket);
        set => _transport = value;
    }

    public override EndPoint? LocalEndPoint { get; set; }

    public override EndPoint? RemoteEndPoint { get; set; }

    public override CancellationToken ConnectionClosed
    {
        get => _closed.Token;
        set => throw new NotSupportedException();
    }

    public override void Abort(ConnectionAbortedException abortReason)
    {
        Socket.Abort();
        Signal();
    }

    public override async ValueTask DisposeAsync()
    {
        await Socket.DisposeAsync().ConfigureAwait(false);
        Signal();
        _closed.Dispose();
        await base.DisposeAsync().ConfigureAwait(false);
    }

    private void Signal()
    {
        try
        {
            _closed.Cancel();
        }
        catch (ObjectDisposedException)
        {
        }
    }

    private sealed class StreamDuplexPipe(PipeSocket socket) : IDuplexPipe
    {
        private readonly PipeWriter _output = PipeWriter.Create(new System.Net.Sockets.NetworkStream(socket.RawSocket, ownsSocket: false));

        public PipeReader Input => socket.Input;

        public PipeWriter Output => _output;
    }
}
