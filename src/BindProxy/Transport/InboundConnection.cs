using System.IO.Pipelines;
using System.Net;
using System.Runtime.Versioning;
using BindProxy.Configuration;
using Microsoft.AspNetCore.Connections;
using Microsoft.AspNetCore.Http.Features;

namespace BindProxy.Transport;

/// <summary>
/// An accepted proxy connection as Kestrel sees it. Under the relay engine (Linux) it starts as a
/// bare descriptor, made into a .NET socket only if the pipe path needs one (a Kafka route); under
/// the pipe engine as an accepted .NET socket.
/// </summary>
internal sealed class InboundConnection : ConnectionContext, IInboundSocketFeature
{
    private static long s_nextId;

    private readonly TransportOptions _options;
    private readonly Linux.SocketHandle? _handle;
    private readonly DescriptorReservation _reservation;
    private System.Net.Sockets.Socket? _accepted;
    private int _reserved;
    private CancellationTokenSource? _closed;
    private int _signalled;
    private PipeSocket? _socket;
    private int _holder = Held;
    private int _resetPending;
    private IDuplexPipe? _transport;

    // Who has the accepted socket; changed once, atomically, since Reset may come from another thread.
    private const int Held = 0;
    private const int Piped = 1;
    private const int Released = 2;

    /// <param name="listener">The listener's own address when it is a specific one (then every accepted socket has it).</param>
    /// <param name="reservation">Descriptors taken for this connection, given back once its sockets are closed.</param>
    public InboundConnection(System.Net.Sockets.Socket accepted, ServedRoute route, IPEndPoint? listener, TransportOptions options, DescriptorReservation reservation)
        : this(route, (IPEndPoint)accepted.RemoteEndPoint!, listener ?? (IPEndPoint)accepted.LocalEndPoint!, options, reservation)
    {
        _accepted = accepted;
    }

    /// <param name="socket">A non-blocking accepted socket, owned from here on (the relay engine's listener).</param>
    /// <param name="listener">The listener's own address when it is a specific one (then every accepted socket has it).</param>
    /// <param name="reservation">Descriptors taken for this connection, given back once its sockets are closed.</param>
    [SupportedOSPlatform("linux")]
    public InboundConnection(Linux.SocketHandle socket, IPEndPoint client, ServedRoute route, IPEndPoint? listener, TransportOptions options, DescriptorReservation reservation)
        : this(route, client, listener ?? Linux.RawSocket.LocalEndPoint(socket), options, reservation)
    {
        _handle = socket;
    }

    private InboundConnection(ServedRoute route, IPEndPoint client, IPEndPoint listener, TransportOptions options, DescriptorReservation reservation)
    {
        _options = options;
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

    public PipeSocket Socket
    {
        get
        {
            if (_socket is null)
            {
                ObjectDisposedException.ThrowIf(Interlocked.CompareExchange(ref _holder, Piped, Held) != Held, this);
                _accepted ??= SocketOfDescriptor();
                Interlocked.Exchange(ref _socket, new PipeSocket(_accepted, _options, Listener, Client));
                _socket.StartReceiving();
                if (Volatile.Read(ref _resetPending) != 0)
                {
                    _socket.Abort(); // a Reset came while the socket was being made
                }
            }

            return _socket;
        }
    }

    // Only the relay engine's listener, on Linux, makes a connection of a bare descriptor.
    private System.Net.Sockets.Socket SocketOfDescriptor() => OperatingSystem.IsLinux()
        ? new System.Net.Sockets.Socket(_handle!.ToSafeSocketHandle())
        : throw new PlatformNotSupportedException();

    public IPEndPoint? OriginalDestination => Volatile.Read(ref _holder) switch
    {
        Held when _accepted is not null => Interception.OriginalDestination.Read(_accepted),
        Held when _handle is not null && OperatingSystem.IsLinux() => Interception.OriginalDestination.Read(_handle.Fd, Listener.AddressFamily),
        Piped when _socket is not null => Interception.OriginalDestination.Read(_socket.Socket),
        _ => null,
    };

    [SupportedOSPlatform("linux")]
    public bool TryDetach([System.Diagnostics.CodeAnalysis.NotNullWhen(true)] out Linux.SocketHandle? socket, out DescriptorReservation reservation)
    {
        socket = null;
        reservation = default;
        if (_accepted is not null || Interlocked.CompareExchange(ref _holder, Released, Held) != Held)
        {
            return false;
        }

        socket = _handle!;
        reservation = TakeReservation();
        return true;
    }

    private DescriptorReservation TakeReservation() => Interlocked.Exchange(ref _reserved, 0) != 0 ? _reservation : default;

    public void Reset()
    {
        int holder = Interlocked.CompareExchange(ref _holder, Released, Held);
        if (holder == Piped)
        {
            Interlocked.Exchange(ref _resetPending, 1);
            Volatile.Read(ref _socket)?.Abort();
            return;
        }

        if (holder == Released)
        {
            return;
        }

        if (_accepted is null)
        {
            if (OperatingSystem.IsLinux())
            {
                _handle!.CloseAbortive(); // a bare descriptor: only ever made on Linux
            }

            return;
        }

        try
        {
            _accepted.LingerState = new System.Net.Sockets.LingerOption(true, 0);
        }
        catch (System.Net.Sockets.SocketException)
        {
        }

        _accepted.Dispose();
    }

    public override string ConnectionId { get; set; }

    public override IFeatureCollection Features { get; }

    public override IDictionary<object, object?> Items
    {
        get => field ??= new Dictionary<object, object?>();
        set;
    }

    /// <summary>
    /// A stream-backed pipe pair for code that wants the classic Kestrel shape. The forwarder does
    /// not use it: it sends from the other side's buffers through <see cref="Socket"/> directly.
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
            if (_accepted is null)
            {
                _handle!.Dispose();
            }
            else
            {
                _accepted.Dispose();
            }
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
