using System.Buffers;
using System.Net;
using Microsoft.AspNetCore.Connections;
using Microsoft.AspNetCore.Server.Kestrel.Core;

namespace BindProxy.Http;

/// <summary>
/// HTTP/1.1 and cleartext HTTP/2 (prior knowledge, as gRPC clients and <c>curl --http2-prior-knowledge</c>
/// speak it) on one port. Kestrel serves both on one endpoint only with TLS, where ALPN decides;
/// without TLS it turns such an endpoint into HTTP/1.1 only. So an Http route's endpoint is
/// HTTP/1.1, and a connection middleware in front of it looks at the first bytes: a connection
/// that opens with the HTTP/2 client preface is handed to Kestrel's own HTTP/2 server instead,
/// taken from an extra listener that accepts nothing (<see cref="PipelineEndPoint"/>) and exists
/// only so that Kestrel builds that HTTP/2 pipeline.
/// </summary>
internal sealed class CleartextHttp2
{
    // RFC 9113 §3.4: every HTTP/2 connection starts with these 24 octets.
    private static ReadOnlySpan<byte> Preface => "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"u8;

    private ConnectionDelegate? _http2;

    private enum Verdict
    {
        Http1,
        Http2,
        NeedMore,
    }

    /// <summary>Adds the listener whose pipeline serves HTTP/2 connections; call once, before any route listener.</summary>
    public void Listen(KestrelServerOptions kestrel) =>
        kestrel.Listen(new PipelineEndPoint(), listen =>
        {
            listen.Protocols = HttpProtocols.Http2;
            listen.Use(next => _http2 = next);
        });

    /// <summary>Middleware for an HTTP/1.1 endpoint: sends connections that open with the HTTP/2 preface to HTTP/2.</summary>
    public Func<ConnectionDelegate, ConnectionDelegate> Middleware(TimeSpan timeout) =>
        http1 => connection => DispatchAsync(connection, http1, timeout);

    private async Task DispatchAsync(ConnectionContext connection, ConnectionDelegate http1, TimeSpan timeout)
    {
        var http2 = _http2;
        if (http2 is null)
        {
            await http1(connection).ConfigureAwait(false);
            return;
        }

        var input = connection.Transport.Input;
        var verdict = Verdict.NeedMore;
        using (var cts = CancellationTokenSource.CreateLinkedTokenSource(connection.ConnectionClosed))
        {
            cts.CancelAfter(timeout);
            try
            {
                // Bounded: each pass holds more bytes than the last, and 24 bytes always decide.
                while (verdict == Verdict.NeedMore)
                {
                    var result = await input.ReadAsync(cts.Token).ConfigureAwait(false);
                    verdict = Classify(result.Buffer);
                    if (verdict == Verdict.NeedMore && (result.IsCompleted || result.IsCanceled))
                    {
                        verdict = Verdict.Http1; // too short for either; HTTP/1.1 reports it
                    }

                    // Nothing is consumed: the chosen server reads the same bytes from the start.
                    input.AdvanceTo(result.Buffer.Start, verdict == Verdict.NeedMore ? result.Buffer.End : result.Buffer.Start);
                }
            }
            catch (OperationCanceledException)
            {
                // Silent past the header timeout, or gone: what Kestrel would do to a silent client.
                connection.Abort(new ConnectionAbortedException("no request within the request headers timeout"));
                return;
            }
        }

        await (verdict == Verdict.Http2 ? http2 : http1)(connection).ConfigureAwait(false);
    }

    private static Verdict Classify(in ReadOnlySequence<byte> buffer)
    {
        Span<byte> head = stackalloc byte[Preface.Length];
        int length = (int)Math.Min(buffer.Length, Preface.Length);
        buffer.Slice(0, length).CopyTo(head);
        if (!head[..length].SequenceEqual(Preface[..length]))
        {
            return Verdict.Http1;
        }

        return length == Preface.Length ? Verdict.Http2 : Verdict.NeedMore;
    }

    /// <summary>The endpoint of the HTTP/2 pipeline's listener; bound by <see cref="PipelineTransport"/> only.</summary>
    internal sealed class PipelineEndPoint : EndPoint
    {
        public override string ToString() => "in-process HTTP/2 pipeline of Http routes";
    }

    /// <summary>Binds <see cref="PipelineEndPoint"/> to a listener that accepts no connection, ever.</summary>
    internal sealed class PipelineTransport : IConnectionListenerFactory, IConnectionListenerFactorySelector
    {
        public bool CanBind(EndPoint endpoint) => endpoint is PipelineEndPoint;

        public ValueTask<IConnectionListener> BindAsync(EndPoint endpoint, CancellationToken cancellationToken = default) =>
            new(new Listener(endpoint));

        private sealed class Listener(EndPoint endpoint) : IConnectionListener
        {
            private readonly TaskCompletionSource _unbound = new(TaskCreationOptions.RunContinuationsAsynchronously);

            public EndPoint EndPoint => endpoint;

            public async ValueTask<ConnectionContext?> AcceptAsync(CancellationToken cancellationToken = default)
            {
                try
                {
                    await _unbound.Task.WaitAsync(cancellationToken).ConfigureAwait(false);
                }
                catch (OperationCanceledException)
                {
                }

                return null;
            }

            public ValueTask UnbindAsync(CancellationToken cancellationToken = default)
            {
                _unbound.TrySetResult();
                return ValueTask.CompletedTask;
            }

            public ValueTask DisposeAsync()
            {
                _unbound.TrySetResult();
                return ValueTask.CompletedTask;
            }
        }
    }
}
