using System.IO.Pipelines;
using System.Net;
using BindProxy.Configuration;
using Microsoft.AspNetCore.Connections;
using Microsoft.AspNetCore.Http.Features;

namespace BindProxy.Transport;

/// <summary>
/// An accepted proxy connection as Kestrel sees it, in the form one engine's listener accepts it:
/// a .NET socket (<see cref="SocketInbound"/>, the pipe engine) or a bare descriptor
/// (<see cref="Linux.DescriptorInbound"/>, the relay engine). Whatever the form, a connection whose
/// route reads its bytes as a stream gets them through <see cref="Socket"/>.
/// </summary>
internal abstract class InboundConnection : ConnectionContext, IInboundSocketFeature
{
    private static long s_nextId;

    // Who has the accepted socket; changed once, atomically, since Reset may come from another thread.
    private const int Held = 0;
    private const int Piped = 1;
    private const int Released = 2;

    private readonly DescriptorReservation _reservation;
    private int _reserved;
    private int _holder = Held;
    private int _resetPending;
    private CancellationTokenSource? _closed;
    private int _signalled;
    private PipeSocket? _socket;
    private IDuplexPipe? _transport;

    /// <param name="reservation">Descriptors taken for this connection, given back once its sockets are closed.</param>
    protected InboundConnection(ServedRoute route, IPEndPoint client, IPEndPoint listener, TransportOptions options, DescriptorReservation reservation)
    {
        Options = options;
        _reservation = reservation;
        _reserved = 1;
        Route = route;
        Client = client;
        Listener = listener;
        ConnectionId = Interlocked.Increment(ref s_nextId).ToString("x", System.Globalization.CultureInfo.InvariantCulture);
        Features = new ConnectionFeatures(typeof(IInboundSocketFeature), this);
    }

    public ServedRoute Route { get; }

    public IPEndPoint Client { get; }

    public IPEndPoint Listener { get; }

    protected TransportOptions Options { get; }

    /// <summary>True while the accepted socket is still in the form it was accepted in (not piped, detached, reset or disposed).</summary>
    protected bool IsHeld => Volatile.Read(ref _holder) == Held;

    public PipeSocket Socket
    {
        get
        {
            if (_socket is null)
            {
                ObjectDisposedException.ThrowIf(Interlocked.CompareExchange(ref _holder, Piped, Held) != Held, this);
                var socket = new PipeSocket(TakeSocket(), Options, Listener, Client) { Tap = ClientTap };
                var route = Route.Model;
                if (route.ListenTls is { } listenTls)
                {
                    socket.UseTls(TlsLeg.OnListener(listenTls));
                }
                else if (route.Kafka is not null || route.Tls is not null)
                {
                    // A client that speaks TLS to a plaintext listener is told so, not forwarded.
                    socket.RefuseTls();
                }

                Interlocked.Exchange(ref _socket, socket);
                socket.StartReceiving();
                if (Volatile.Read(ref _resetPending) != 0)
                {
                    _socket.Abort(); // a Reset came while the socket was being made
                }
            }

            return _socket;
        }
    }

    public Capture.LegTap? ClientTap { get; set; }

    public IPEndPoint? OriginalDestination => Volatile.Read(ref _holder) switch
    {
        Held => OriginalDestinationOfHeld(),
        Piped when _socket is not null => Interception.OriginalDestination.Read(_socket.Socket),
        _ => null,
    };

    /// <summary>The accepted socket as a .NET socket, for <see cref="Socket"/> (called once, while held).</summary>
    protected abstract System.Net.Sockets.Socket TakeSocket();

    /// <summary>Resets the socket while it is still held in its accepted form.</summary>
    protected abstract void ResetHeld();

    /// <summary>Closes the socket while it is still held in its accepted form.</summary>
    protected abstract void DisposeHeld();

    protected abstract IPEndPoint? OriginalDestinationOfHeld();

    /// <summary>Takes the accepted socket away from this connection (the relay engine's detach); false when it is no longer held.</summary>
    protected bool Release() => Interlocked.CompareExchange(ref _holder, Released, Held) == Held;

    /// <summary>The descriptors reserved for the connection, once: whoever takes them gives them back.</summary>
    protected DescriptorReservation TakeReservation() => Interlocked.Exchange(ref _reserved, 0) != 0 ? _reservation : default;

    public void Reset()
    {
        int holder = Interlocked.CompareExchange(ref _holder, Released, Held);
        if (holder == Piped)
        {
            Interlocked.Exchange(ref _resetPending, 1);
            Volatile.Read(ref _socket)?.Abort();
        }
        else if (holder == Held)
        {
            ResetHeld();
        }
    }

    public override string ConnectionId { get; set; }

    public override IFeatureCollection Features { get; }

    public override IDictionary<object, object?> Items
    {
        get => field ??= new Dictionary<object, object?>();
        set;
    }

    /// <summary>
    /// A stream-backed pipe pair for code that wants the classic Kestrel shape. The forwarders do
    /// not use it: they send from the other side's buffers through <see cref="Socket"/> directly.
    /// </summary>
    public override IDuplexPipe Transport
    {
        get => _transport ??= new StreamDuplexPipe(Socket);
        set => _transport = value;
    }

    public override EndPoint? LocalEndPoint
    {
        get => Listener;
        set => throw new NotSupportedException();
    }

    public override EndPoint? RemoteEndPoint
    {
        get => Client;
        set => throw new NotSupportedException();
    }

    /// <summary>Fires when the connection is aborted or disposed; made on first use (a relayed connection never needs one).</summary>
    public override CancellationToken ConnectionClosed
    {
        get
        {
            if (_closed is null)
            {
                var made = new CancellationTokenSource();
                if (Interlocked.CompareExchange(ref _closed, made, null) is not null)
                {
                    made.Dispose();
                }
                else if (Volatile.Read(ref _signalled) != 0)
                {
                    Signal();
                }
            }

            return _closed.Token;
        }

        set => throw new NotSupportedException();
    }

    public override void Abort(ConnectionAbortedException abortReason)
    {
        Reset();
        Signal();
    }

    public override async ValueTask DisposeAsync()
    {
        if (Volatile.Read(ref _holder) == Piped)
        {
            if (_socket is not null)
            {
                await _socket.DisposeAsync().ConfigureAwait(false);
            }
        }
        else if (Interlocked.CompareExchange(ref _holder, Released, Held) == Held)
        {
            DisposeHeld();
        }

        // Still here unless a relay took it: the client's socket is closed by now (the pipe path's
        // upstream one was closed before the handler returned).
        TakeReservation().Return();
        Signal();
        _closed?.Dispose();
        await base.DisposeAsync().ConfigureAwait(false);
    }

    private void Signal()
    {
        Volatile.Write(ref _signalled, 1);
        try
        {
            Volatile.Read(ref _closed)?.Cancel();
        }
        catch (ObjectDisposedException)
        {
        }
    }

    private sealed class StreamDuplexPipe(PipeSocket socket) : IDuplexPipe
    {
        private readonly PipeWriter _output = PipeWriter.Create(new System.Net.Sockets.NetworkStream(socket.Socket, ownsSocket: false));

        public PipeReader Input => socket.Input;

        public PipeWriter Output => _output;
    }
}
