using System.Buffers.Binary;
using System.Net.Sockets;
using Microsoft.Extensions.DependencyInjection;
using BindProxy.Capture;
using BindProxy.Configuration;
using BindProxy.Forwarding;
using BindProxy.Tests.Infrastructure;

namespace BindProxy.Tests.Capture;

/// <summary>
/// A capture of a bulk stream through the proxy, on both engines, whose writer cannot keep up (its
/// output is held shut while the stream runs): the stream goes through whole, what the capture
/// could not take is counted in <c>if_drop</c>, and every byte it did take sits at its own place in
/// the stream on both legs, both ways.
/// </summary>
public sealed class BulkCaptureTests
{
    private const int StreamBytes = 24 * 1024 * 1024;

    [Theory]
    [MemberData(nameof(Engines.Tcp), MemberType = typeof(Engines))]
    public async Task A_capture_that_cannot_keep_up_drops_and_counts_and_what_it_took_is_the_streams_bytes_in_place(string engine)
    {
        await using var upstream = TestServer.Echo();
        var config = new ProxyConfig
        {
            Engine = engine,
            Routes = [new RouteConfig { Name = "test", Listen = "127.0.0.1:0", Upstream = upstream.Address, Source = "127.0.0.2" }],
        };
        await using var proxy = await TestProxy.StartAsync(config);
        var hub = proxy.Services.GetRequiredService<CaptureHub>();
        var session = hub.Start(new CaptureSelector(Route: "test"), new CaptureLimits(QueueBytes: 1024 * 1024));
        var output = new HeldStream();
        using var stop = new CancellationTokenSource();
        var run = hub.RunAsync(session, output, stop.Token);

        // The byte at offset i is a function of i alone, so any captured segment can be checked by itself.
        var data = Pattern(StreamBytes);
        using (var client = await SocketExtensions.ConnectAsync(proxy.Endpoint()))
        {
            var echo = client.ReadToEndAsync(TimeSpan.FromSeconds(60));
            for (int at = 0; at < data.Length; at += 256 * 1024)
            {
                await client.SendAsync(data.AsMemory(at, Math.Min(256 * 1024, data.Length - at)), SocketFlags.None).AsTask().WaitAsync(TimeSpan.FromSeconds(30));
            }

            client.Shutdown(SocketShutdown.Send);
            Assert.Equal(data, await echo); // forwarding did not wait for the capture, nor lose a byte to it
        }

        output.Open();
        await Poll.UntilAsync(() => Packet.ReadAll(output.Bytes()).Count(p => p.Fin) == 4, () => $"both legs' FINs both ways in the capture; {Packet.ReadAll(output.Bytes()).Count(p => p.Fin)}");
        await stop.CancelAsync();
        await run.WaitAsync(TimeSpan.FromSeconds(10));
        var pcapng = output.Bytes();

        var statistics = Tshark.Statistics(pcapng);
        Assert.Equal(2, statistics.Count);
        Assert.True(statistics.Sum(s => s.Dropped) > 0, $"nothing dropped: {string.Join(", ", statistics)}");
        Assert.Equal(session.Dropped, statistics.Sum(s => s.Dropped));
        Assert.Contains(Packet.ReadAll(pcapng), p => p.Comment?.Contains("not captured: the capture's queue was full", StringComparison.Ordinal) == true);

        // Each of the four directions (two legs, both ways): every payload byte captured is the stream's byte at its offset.
        var segments = Segments(pcapng);
        var directions = segments.GroupBy(s => (s.Interface, s.From)).ToList();
        Assert.Equal(4, directions.Count);
        long captured = 0;
        foreach (var direction in directions)
        {
            uint isn = direction.Single(s => (s.Flags & 0x02) != 0).Seq;
            foreach (var segment in direction.Where(s => s.Payload.Length > 0))
            {
                long offset = unchecked((uint)(segment.Seq - isn - 1));
                Assert.True(offset + segment.Payload.Length <= data.Length, $"{direction.Key}: {segment.Payload.Length} bytes at {offset}, past the stream's end");
                Assert.True(data.AsSpan((int)offset, segment.Payload.Length).SequenceEqual(segment.Payload), $"{direction.Key}: the {segment.Payload.Length} bytes at {offset} are not the stream's");
                captured += segment.Payload.Length;
            }

            var fin = direction.Single(s => (s.Flags & 0x01) != 0);
            Assert.Equal((long)data.Length, unchecked((uint)(fin.Seq - isn - 1)));
        }

        Assert.InRange(captured, 1, 4L * data.Length - 1);
    }

    private static byte[] Pattern(int length)
    {
        var bytes = new byte[length];
        for (int i = 0; i < length; i += 4)
        {
            BinaryPrimitives.WriteUInt32BigEndian(bytes.AsSpan(i), (uint)(i * 2654435761u));
        }

        return bytes;
    }

    /// <summary>Every IPv4 TCP packet of a pcapng file: interface, source, flags, sequence number, payload.</summary>
    private static List<(int Interface, string From, byte Flags, uint Seq, byte[] Payload)> Segments(byte[] file)
    {
        var segments = new List<(int, string, byte, uint, byte[])>();
        for (int at = 0; at + 12 <= file.Length;)
        {
            uint type = BinaryPrimitives.ReadUInt32LittleEndian(file.AsSpan(at));
            int length = (int)BinaryPrimitives.ReadUInt32LittleEndian(file.AsSpan(at + 4));
            if (type == 6)
            {
                int face = BinaryPrimitives.ReadInt32LittleEndian(file.AsSpan(at + 8));
                int size = (int)BinaryPrimitives.ReadUInt32LittleEndian(file.AsSpan(at + 20));
                var ip = file.AsSpan(at + 28, size);
                var tcp = ip[((ip[0] & 0x0F) * 4)..];
                var from = $"{new System.Net.IPAddress(ip.Slice(12, 4))}:{BinaryPrimitives.ReadUInt16BigEndian(tcp)}";
                segments.Add((face, from, tcp[13], BinaryPrimitives.ReadUInt32BigEndian(tcp[4..]), tcp[((tcp[12] >> 4) * 4)..].ToArray()));
            }

            at += length;
        }

        return segments;
    }

    /// <summary>An output whose writes wait until it is opened: a reader that is not reading.</summary>
    private sealed class HeldStream : Stream
    {
        private readonly TaskCompletionSource _open = new(TaskCreationOptions.RunContinuationsAsynchronously);
        private readonly MemoryStream _written = new();
        private readonly Lock _lock = new();

        public void Open() => _open.TrySetResult();

        public byte[] Bytes()
        {
            lock (_lock)
            {
                return _written.ToArray();
            }
        }

        public override async ValueTask WriteAsync(ReadOnlyMemory<byte> buffer, CancellationToken cancellationToken = default)
        {
            await _open.Task.WaitAsync(cancellationToken);
            lock (_lock)
            {
                _written.Write(buffer.Span);
            }
        }

        public override Task WriteAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
            WriteAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

        public override void Write(byte[] buffer, int offset, int count) => WriteAsync(buffer, offset, count, CancellationToken.None).GetAwaiter().GetResult();

        public override Task FlushAsync(CancellationToken cancellationToken) => Task.CompletedTask;

        public override void Flush()
        {
        }

        public override bool CanRead => false;

        public override bool CanSeek => false;

        public override bool CanWrite => true;

        public override long Length => throw new NotSupportedException();

        public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }

        public override int Read(byte[] buffer, int offset, int count) => throw new NotSupportedException();

        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

        public override void SetLength(long value) => throw new NotSupportedException();
    }
}
