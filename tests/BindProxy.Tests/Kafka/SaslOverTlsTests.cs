using System.Buffers.Binary;
using System.Collections.Concurrent;
using System.Net.Sockets;
using System.Text;
using BindProxy.Configuration;
using BindProxy.Kafka.Protocol;
using BindProxy.Tests.Infrastructure;

namespace BindProxy.Tests.Kafka;

/// <summary>
/// SASL through a Kafka route whose upstream is TLS: a small broker that speaks just enough (a
/// SaslHandshake, then SaslAuthenticate or, after a v0 handshake, bare size-prefixed tokens, then
/// Metadata) sits behind a TLS terminator. What the client sends reaches it byte for byte, what
/// it answers reaches the client, and the broker addresses of the Metadata that follows are
/// still rewritten.
/// </summary>
public sealed class SaslOverTlsTests : IDisposable
{
    private static readonly TimeSpan Prompt = TimeSpan.FromSeconds(10);

    private readonly TestCertificates _certs = new();

    public void Dispose() => _certs.Dispose();

    /// <summary>Every frame (or raw token) the broker received, as bytes including the size prefix.</summary>
    private sealed class SaslBroker
    {
        public ConcurrentQueue<byte[]> Received { get; } = new();

        public async Task ServeAsync(Socket socket, CancellationToken cancellationToken)
        {
            bool rawTokenNext = false;
            while (await ReadFrameAsync(socket, cancellationToken) is { } frame)
            {
                Received.Enqueue(frame);
                if (rawTokenNext)
                {
                    // A v0 handshake's token: answered with a bare size-prefixed token, no header.
                    rawTokenNext = false;
                    await socket.SendAsync(new WireWriter().Raw("server-token"u8).ToFrame(), cancellationToken);
                    continue;
                }

                short apiKey = BinaryPrimitives.ReadInt16BigEndian(frame.AsSpan(4));
                short apiVersion = BinaryPrimitives.ReadInt16BigEndian(frame.AsSpan(6));
                int correlation = BinaryPrimitives.ReadInt32BigEndian(frame.AsSpan(8));
                byte[] response = apiKey switch
                {
                    KafkaApiKeys.SaslHandshake => new WireWriter().Int32(correlation).Int16(0).ArrayCount(false, 1).String(false, "PLAIN").ToFrame(),
                    KafkaApiKeys.SaslAuthenticate => new WireWriter().Int32(correlation).Int16(0).String(false, null).Bytes(false, "server-token"u8.ToArray()).ToFrame(),
                    KafkaApiKeys.Metadata => ResponseEncoders.Metadata(apiVersion, ResponseEncoders.Brokers(2)),
                    _ => throw new InvalidOperationException($"api key {apiKey}"),
                };
                rawTokenNext = apiKey == KafkaApiKeys.SaslHandshake && apiVersion == 0;
                await socket.SendAsync(response, cancellationToken);
            }
        }

        private static async Task<byte[]?> ReadFrameAsync(Socket socket, CancellationToken cancellationToken)
        {
            var size = new byte[4];
            if (!await ReadAsync(socket, size, cancellationToken))
            {
                return null;
            }

            var frame = new byte[4 + BinaryPrimitives.ReadInt32BigEndian(size)];
            size.CopyTo(frame, 0);
            return await ReadAsync(socket, frame.AsMemory(4), cancellationToken) ? frame : null;
        }

        private static async Task<bool> ReadAsync(Socket socket, Memory<byte> buffer, CancellationToken cancellationToken)
        {
            while (!buffer.IsEmpty)
            {
                int read = await socket.ReceiveAsync(buffer, SocketFlags.None, cancellationToken);
                if (read == 0)
                {
                    return false;
                }

                buffer = buffer[read..];
            }

            return true;
        }
    }

    private static async Task<byte[]> ReadResponseAsync(Socket socket)
    {
        var size = await socket.ReadExactlyAsync(4);
        return [.. size, .. await socket.ReadExactlyAsync(BinaryPrimitives.ReadInt32BigEndian(size))];
    }

    [Theory]
    [InlineData(0)]
    [InlineData(1)]
    public async Task SASL_passes_through_untouched_over_a_TLS_upstream_and_rewriting_goes_on_after_it(short handshakeVersion)
    {
        var broker = new SaslBroker();
        await using var backend = TestServer.Start(broker.ServeAsync);
        await using var terminator = await TlsTerminator.StartAsync(_certs.Combined("server"), backend.Endpoint);
        await using var proxy = await TestProxy.StartAsync(new RouteConfig
        {
            Name = KafkaRoute.Name,
            Listen = "127.0.0.1:0",
            Upstream = $"localhost:{terminator.Port}",
            Source = KafkaRoute.Source,
            Protocol = "Kafka",
            Tls = new Dictionary<string, string?> { ["CaFile"] = _certs.CaFile },
        });
        using var client = await SocketExtensions.ConnectAsync(proxy.Endpoint(KafkaRoute.Name));

        var handshake = TestSupport.RequestFrame(KafkaApiKeys.SaslHandshake, handshakeVersion, 7, "sasl-client", w => w.String(false, "PLAIN"));
        await client.SendAsync(handshake);
        var handshakeResponse = await ReadResponseAsync(client);
        Assert.Contains("PLAIN", Encoding.ASCII.GetString(handshakeResponse), StringComparison.Ordinal);

        byte[] authentication = handshakeVersion == 0
            ? new WireWriter().Raw("\0alice\0secret"u8).ToFrame() // a bare token: no request header at all
            : TestSupport.RequestFrame(KafkaApiKeys.SaslAuthenticate, 0, 8, "sasl-client", w => w.Bytes(false, "\0alice\0secret"u8.ToArray()));
        await client.SendAsync(authentication);
        var authenticated = await ReadResponseAsync(client);
        Assert.EndsWith("server-token", Encoding.ASCII.GetString(authenticated), StringComparison.Ordinal);

        var metadata = TestSupport.RequestFrame(KafkaApiKeys.Metadata, 1, ResponseEncoders.CorrelationId, "sasl-client", w => w.Int32(-1));
        await client.SendAsync(metadata);
        var brokers = Encoding.ASCII.GetString(await ReadResponseAsync(client));
        Assert.DoesNotContain("kafka.internal", brokers, StringComparison.Ordinal);
        Assert.Contains("127.0.0.1", brokers, StringComparison.Ordinal);

        // The broker got exactly what the client sent, through TLS and the Kafka layer.
        await Poll.UntilAsync(() => broker.Received.Count == 3, "the broker to receive the three frames");
        Assert.Equal([handshake, authentication, metadata], broker.Received.ToArray());
    }
}
