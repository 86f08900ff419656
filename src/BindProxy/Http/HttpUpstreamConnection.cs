using System.Net;
using System.Net.Sockets;
using System.Runtime.CompilerServices;
using BindProxy.Forwarding;
using BindProxy.Transport;

namespace BindProxy.Http;

/// <summary>
/// One upstream connection of an Http route: a stream to the HTTP client that pools it, and the
/// legs of a proxied connection to the registry, the sweeper and the admin API. Bytes are counted
/// as they pass; the close is reported once, whether the pool disposes the stream or the proxy
/// aborts it.
/// </summary>
/// <remarks>
/// Counted through the calls the HTTP client makes (the span, memory and array overloads of read
/// and write); "to client" is what the upstream sent, which the proxy passes on to the client.
/// </remarks>
internal sealed class HttpUpstreamConnection : NetworkStream, IConnectionLegs
{
    private const int Open = 0;
    private const int UpstreamFin = 1;
    private const int UpstreamReset = 2;

    private readonly Action<HttpUpstreamConnection, ProxiedConnection> _onClosed;
    private ProxiedConnection? _connection;
    private long _toUpstream;
    private long _fromUpstream;
    private int _end;
    private int _disposed;
    private int _reported;

    public HttpUpstreamConnection(Socket socket, IPEndPoint client, IPEndPoint listener, IPEndPoint upstream, Action<HttpUpstreamConnection, ProxiedConnection> onClosed)
        : base(socket, ownsSocket: true)
    {
        Client = client;
        Listener = listener;
        Source = (IPEndPoint)socket.LocalEndPoint!;
        Upstream = upstream;
        _onClosed = onClosed;
    }

    /// <summary>The client whose request opened this connection; later requests of other clients may reuse it under round-robin.</summary>
    public IPEndPoint Client { get; }

    /// <summary>The route listener that client's request arrived on.</summary>
    public IPEndPoint Listener { get; }

    public IPEndPoint Source { get; }

    public IPEndPoint Upstream { get; }

    public long BytesToUpstream => Interlocked.Read(ref _toUpstream);

    public long BytesToClient => Interlocked.Read(ref _fromUpstream);

    public long BytesReceived => BytesToUpstream + BytesToClient;

    /// <summary>Request and response bodies are held by the HTTP client and server, not by this connection.</summary>
    public long BufferedBytes => 0;

    public long HeldForUpstream => 0;

    public long HeldForClient => 0;

    public string State => Volatile.Read(ref _disposed) != 0 ? "closing" : Volatile.Read(ref _end) switch
    {
        UpstreamFin => "half-closed by upstream",
        UpstreamReset => "closing",
        _ => "open",
    };

    /// <summary>The HTTP client's pool closes its connections; the kernel's graceful close is what they get.</summary>
    public bool IsFlushing => false;

    public long KernelQueued() => 0;

    /// <summary>Only the upstream side is the proxy's socket here, and the HTTP client holds its bytes.</summary>
    public LegsInspection Inspect() => default;

    /// <summary>Why the connection ended from the upstream's side, if it did: its FIN or its reset, whichever came first.</summary>
    public CloseReason? EndedByUpstream => Volatile.Read(ref _end) switch
    {
        UpstreamFin => CloseReason.UpstreamClosed,
        UpstreamReset => CloseReason.UpstreamReset,
        _ => null,
    };

    /// <summary>Ties the stream to its registry entry; a close that came first is reported now.</summary>
    public void Attach(ProxiedConnection connection)
    {
        Volatile.Write(ref _connection, connection);
        if (Volatile.Read(ref _disposed) != 0)
        {
            ReportClose();
        }
    }

    /// <summary>Http routes are not captured: their bytes go through YARP, not through legs the proxy taps.</summary>
    public Capture.ConnectionTap? Tap { get => null; set { } }

    /// <summary>Resets the connection; the pool sees an error on its next use and drops it.</summary>
    public void Abort()
    {
        try
        {
            Socket.LingerState = new LingerOption(true, 0);
        }
        catch (Exception e) when (e is ObjectDisposedException or SocketException)
        {
            // Already closed: nothing left to reset.
        }

        Dispose();
    }

    /// <summary>The pool moves the bytes; a peer that stopped reading shows up there, not here.</summary>
    public CloseReason? ResetWhilePaused() => null;

    public override int Read(byte[] buffer, int offset, int count) => Read(buffer.AsSpan(offset, count));

    public override int Read(Span<byte> buffer)
    {
        try
        {
            return Received(base.Read(buffer), buffer.Length);
        }
        catch (IOException e)
        {
            NoteFailure(e);
            throw;
        }
    }

    public override int ReadByte()
    {
        Span<byte> one = stackalloc byte[1];
        return Read(one) == 1 ? one[0] : -1;
    }

    public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
        ReadAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

    [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder<>))]
    public override async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
    {
        try
        {
            return Received(await base.ReadAsync(buffer, cancellationToken).ConfigureAwait(false), buffer.Length);
        }
        catch (IOException e)
        {
            NoteFailure(e);
            throw;
        }
    }

    public override void Write(byte[] buffer, int offset, int count) => Write(buffer.AsSpan(offset, count));

    public override void Write(ReadOnlySpan<byte> buffer)
    {
        base.Write(buffer);
        Interlocked.Add(ref _toUpstream, buffer.Length);
    }

    public override void WriteByte(byte value) => Write([value]);

    public override Task WriteAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
        WriteAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

    [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder))]
    public override async ValueTask WriteAsync(ReadOnlyMemory<byte> buffer, CancellationToken cancellationToken = default)
    {
        await base.WriteAsync(buffer, cancellationToken).ConfigureAwait(false);
        Interlocked.Add(ref _toUpstream, buffer.Length);
    }

    protected override void Dispose(bool disposing)
    {
        if (disposing && Interlocked.Exchange(ref _disposed, 1) == 0)
        {
            base.Dispose(disposing);
            ReportClose();
            return;
        }

        base.Dispose(disposing);
    }

    private int Received(int count, int requested)
    {
        // A zero-byte read (the pool's check of an idle connection) returns 0 without an end of stream.
        if (count == 0 && requested > 0)
        {
            Interlocked.CompareExchange(ref _end, UpstreamFin, Open);
        }

        Interlocked.Add(ref _fromUpstream, count);
        return count;
    }

    private void NoteFailure(IOException e)
    {
        if (e.InnerException is SocketException { SocketErrorCode: SocketError.ConnectionReset })
        {
            Interlocked.CompareExchange(ref _end, UpstreamReset, Open);
        }
    }

    private void ReportClose()
    {
        if (Volatile.Read(ref _connection) is { } connection && Interlocked.Exchange(ref _reported, 1) == 0)
        {
            _onClosed(this, connection);
        }
    }
}
