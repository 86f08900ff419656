using System.Net;
using BindProxy.Capture;
using BindProxy.Tests.Infrastructure;

namespace BindProxy.Tests.Capture;

/// <summary>
/// The capture writer's packets as Wireshark reads them: real TCP (no sequence warnings, nothing
/// malformed), each stream's payload exactly the bytes given, both ways, however they were cut.
/// </summary>
public sealed class PcapngWriterTests
{
    private static readonly IPEndPoint Client = new(IPAddress.Parse("127.0.0.1"), 40001);
    private static readonly IPEndPoint Listener = new(IPAddress.Parse("127.0.0.1"), 19092);
    private static readonly IPEndPoint Source = new(IPAddress.Parse("127.0.0.2"), 40002);
    private static readonly IPEndPoint Upstream = new(IPAddress.Parse("127.0.0.1"), 9092);

    private static byte[] Bytes(int length, int seed)
    {
        var bytes = new byte[length];
        new Random(seed).NextBytes(bytes);
        return bytes;
    }

    /// <summary>Writes what <paramref name="feed"/> offers to a file, the capture ending once it has all been written.</summary>
    private static async Task<byte[]> CaptureAsync(ConnectionTap tap, Action feed, CaptureLimits? limits = null, Func<ConnectionTap, CaptureMatch>? match = null)
    {
        var session = new CaptureSession("test", CaptureLegs.Both, match ?? (_ => CaptureMatch.Yes), limits ?? new CaptureLimits());
        tap.Attach(session);
        feed();
        using var output = new MemoryStream();
        using var stop = new CancellationTokenSource();
        var run = session.RunAsync(output, stop.Token);
        await Poll.UntilAsync(() => session.QueuedBytes == 0, "the capture to take what was offered");
        stop.Cancel();
        await run.WaitAsync(TimeSpan.FromSeconds(10));
        return output.ToArray();
    }

    private static async Task<string> WriteAsync(TempDirectory dir, byte[] pcapng)
    {
        var file = Path.Combine(dir.Path, "capture.pcapng");
        await File.WriteAllBytesAsync(file, pcapng);
        return file;
    }

    /// <summary>Wireshark, told to check them, finds every IP and TCP checksum right, whatever the payload's length and alignment.</summary>
    [Fact]
    public async Task Every_checksum_is_right_for_payloads_of_every_length_and_offset()
    {
        var tap = new ConnectionTap("test", Client, Listener, fromStart: true);
        tap.Connected(Source, Upstream);
        var bytes = Bytes(70_000, 3);
        var pcapng = await CaptureAsync(tap, () =>
        {
            long offset = 0;
            foreach (int length in new[] { 1, 2, 3, 7, 8, 9, 15, 16, 17, 31, 1000, 1001, 65_483, 1 })
            {
                tap.ClientLeg.Received(bytes.AsSpan((int)(offset % 1000), length), offset);
                offset += length;
            }
        });

        using var dir = new TempDirectory();
        var file = await WriteAsync(dir, pcapng);
        var tshark = ExternalTool.Require("tshark");
        var checkedCount = await ExternalTool.RunAsync(tshark, "-r", file, "-o", "tcp.check_checksum:TRUE", "-o", "ip.check_checksum:TRUE",
            "-Y", "tcp.checksum.status == 1 && ip.checksum.status == 1", "-T", "fields", "-e", "frame.number");
        var bad = await ExternalTool.RunAsync(tshark, "-r", file, "-o", "tcp.check_checksum:TRUE", "-o", "ip.check_checksum:TRUE",
            "-Y", "tcp.checksum.status != 1 || ip.checksum.status != 1", "-T", "fields", "-e", "frame.number", "-e", "tcp.len");
        Assert.Equal("", bad.Trim());
        Assert.Equal(Packet.ReadAll(pcapng).Count, checkedCount.Split('\n', StringSplitOptions.RemoveEmptyEntries).Length);
    }

    [Fact]
    public async Task A_connection_from_its_start_reads_as_clean_TCP_with_its_bytes_both_ways_on_both_legs()
    {
        var request = Bytes(150_000, 1); // more than two segments
        var response = Bytes(70_000, 2);
        var tap = new ConnectionTap("kafka", Client, Listener, fromStart: true);
        tap.Connected(Source, Upstream);
        var pcapng = await CaptureAsync(tap, () =>
        {
            // Read from the client in two reads, sent upstream in three writes; the answer in one each.
            tap.ClientLeg.Received(request.AsSpan(0, 100_000), 0);
            tap.UpstreamLeg.Sent(request.AsSpan(0, 10), 0);
            tap.ClientLeg.Received(request.AsSpan(100_000), 100_000);
            tap.UpstreamLeg.Sent(request.AsSpan(10, 99_990), 10);
            tap.UpstreamLeg.Sent(request.AsSpan(100_000), 100_000);
            tap.UpstreamLeg.Received(response, 0);
            tap.ClientLeg.Sent(response, 0);
            tap.ClientLeg.Received([], request.Length);
            tap.UpstreamLeg.SentFin(request.Length);
            tap.UpstreamLeg.Received([], response.Length);
            tap.ClientLeg.SentFin(response.Length);
        });

        using var dir = new TempDirectory();
        var file = await WriteAsync(dir, pcapng);
        Assert.Empty(await Tshark.ProblemsAsync(file));
        var streams = await Tshark.StreamsAsync(file);
        Assert.Equal(2, streams.Count);
        var clientLeg = streams["127.0.0.1:40001 127.0.0.1:19092"];
        var upstreamLeg = streams["127.0.0.2:40002 127.0.0.1:9092"];
        Assert.Equal(request, clientLeg.FromOpener);
        Assert.Equal(response, clientLeg.ToOpener);
        Assert.Equal(request, upstreamLeg.FromOpener);
        Assert.Equal(response, upstreamLeg.ToOpener);

        var fins = await ExternalTool.RunAsync(ExternalTool.Require("tshark"), "-r", file, "-Y", "tcp.flags.fin == 1", "-T", "fields", "-e", "tcp.stream");
        Assert.Equal(4, fins.Split('\n', StringSplitOptions.RemoveEmptyEntries).Length);
    }

    [Fact]
    public async Task A_capture_begun_mid_connection_opens_with_a_made_up_handshake_and_no_warnings()
    {
        var later = Bytes(5_000, 3);
        var tap = new ConnectionTap("tcp", Client, Listener, fromStart: false);
        tap.Connected(Source, Upstream);
        var pcapng = await CaptureAsync(tap, () =>
        {
            tap.ClientLeg.Received(later, 1_000_000);
            tap.ClientLeg.Sent(later.AsSpan(0, 100), 77);
            tap.ClientLeg.Received(later, 1_005_000);
            tap.ClientLeg.Reset(fromPeer: false);
        });

        using var dir = new TempDirectory();
        var file = await WriteAsync(dir, pcapng);
        Assert.Empty(await Tshark.ProblemsAsync(file));
        var streams = await Tshark.StreamsAsync(file);
        var leg = Assert.Single(streams).Value;
        Assert.Equal([.. later, .. later], leg.FromOpener);
        Assert.Equal(later.AsSpan(0, 100).ToArray(), leg.ToOpener);
        var comments = await ExternalTool.RunAsync(ExternalTool.Require("tshark"), "-r", file, "-T", "fields", "-e", "frame.comment");
        Assert.Contains("connection open before the capture began", comments, StringComparison.Ordinal);
        Assert.Contains("reset by the proxy", comments, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Ipv6_legs_read_as_clean_TCP()
    {
        var data = Bytes(3_000, 4);
        var tap = new ConnectionTap("v6", new IPEndPoint(IPAddress.IPv6Loopback, 40010), new IPEndPoint(IPAddress.IPv6Loopback, 19092), fromStart: true);
        tap.Connected(new IPEndPoint(IPAddress.Parse("127.0.0.2").MapToIPv6(), 40011), new IPEndPoint(IPAddress.Parse("127.0.0.1"), 9092));
        var pcapng = await CaptureAsync(tap, () =>
        {
            tap.ClientLeg.Received(data, 0);
            tap.UpstreamLeg.Sent(data, 0);
        });

        using var dir = new TempDirectory();
        var file = await WriteAsync(dir, pcapng);
        Assert.Empty(await Tshark.ProblemsAsync(file));
        var streams = await Tshark.StreamsAsync(file);
        Assert.Equal(data, streams["[::1]:40010 [::1]:19092"].FromOpener);
        Assert.Equal(data, streams["127.0.0.2:40002 127.0.0.1:9092".Replace("40002", "40011", StringComparison.Ordinal)].FromOpener);
    }

    [Fact]
    public async Task Packets_past_the_queue_bound_are_dropped_counted_in_if_drop_and_said_in_a_comment()
    {
        var chunk = Bytes(64 * 1024, 5);
        var tap = new ConnectionTap("bulk", Client, Listener, fromStart: true);
        tap.Connected(Source, Upstream);
        // Nothing is written while these are offered (the capture has not begun to run): the queue holds 4.
        var pcapng = await CaptureAsync(tap, () =>
        {
            for (int i = 0; i < 10; i++)
            {
                tap.ClientLeg.Received(chunk, (long)i * chunk.Length);
            }
        }, new CaptureLimits(QueueBytes: 4 * (64 * 1024 + 64)));

        var statistics = Tshark.Statistics(pcapng);
        var clientLeg = Assert.Single(statistics);
        Assert.Equal(6, clientLeg.Dropped);
        Assert.True(clientLeg.Received >= 10, $"received {clientLeg.Received}");
        using var dir = new TempDirectory();
        var file = await WriteAsync(dir, pcapng);
        var tshark = ExternalTool.Require("tshark");
        var seqs = await ExternalTool.RunAsync(tshark, "-r", file, "-Y", "tcp.len > 0", "-T", "fields", "-e", "tcp.seq");
        Assert.Equal(4 * 2, seqs.Split('\n', StringSplitOptions.RemoveEmptyEntries).Length); // 64 KiB is two segments
    }

    [Fact]
    public async Task Bytes_reported_once_for_both_legs_are_written_on_each_at_its_own_offsets()
    {
        var request = Bytes(100_000, 6);
        var response = Bytes(3_000, 7);
        var tap = new ConnectionTap("relay", Client, Listener, fromStart: true);
        tap.Connected(Source, Upstream);
        var pcapng = await CaptureAsync(tap, () =>
        {
            // Received and sent on at once; then received and sent in part, the rest sent later.
            tap.ClientLeg.Relayed(request.AsSpan(0, 70_000), 0, 0, 70_000);
            tap.ClientLeg.Relayed(request.AsSpan(70_000), 70_000, 70_000, 10_000);
            tap.UpstreamLeg.Sent(request.AsSpan(80_000), 80_000);
            tap.UpstreamLeg.Relayed(response, 0, 0, response.Length);
            tap.ClientLeg.Received([], request.Length);
            tap.UpstreamLeg.SentFin(request.Length);
        });

        using var dir = new TempDirectory();
        var file = await WriteAsync(dir, pcapng);
        Assert.Empty(await Tshark.ProblemsAsync(file));
        var streams = await Tshark.StreamsAsync(file);
        Assert.Equal(request, streams["127.0.0.1:40001 127.0.0.1:19092"].FromOpener);
        Assert.Equal(response, streams["127.0.0.1:40001 127.0.0.1:19092"].ToOpener);
        Assert.Equal(request, streams["127.0.0.2:40002 127.0.0.1:9092"].FromOpener);
        Assert.Equal(response, streams["127.0.0.2:40002 127.0.0.1:9092"].ToOpener);

        // Each payload is summed once for both legs' packets; every checksum is still each packet's own.
        var bad = await ExternalTool.RunAsync(ExternalTool.Require("tshark"), "-r", file, "-o", "tcp.check_checksum:TRUE", "-o", "ip.check_checksum:TRUE",
            "-Y", "tcp.checksum.status != 1 || ip.checksum.status != 1", "-T", "fields", "-e", "frame.number", "-e", "tcp.len");
        Assert.Equal("", bad.Trim());
    }

    [Fact]
    public async Task Bytes_reported_once_for_both_legs_and_dropped_are_counted_on_both()
    {
        var chunk = Bytes(64 * 1024, 8);
        var tap = new ConnectionTap("bulk", Client, Listener, fromStart: true);
        tap.Connected(Source, Upstream);
        var pcapng = await CaptureAsync(tap, () =>
        {
            for (int i = 0; i < 10; i++)
            {
                tap.ClientLeg.Relayed(chunk, (long)i * chunk.Length, (long)i * chunk.Length, chunk.Length);
            }
        }, new CaptureLimits(QueueBytes: 4 * (64 * 1024 + 64)));

        var statistics = Tshark.Statistics(pcapng);
        Assert.Equal(2, statistics.Count);
        Assert.All(statistics, leg => Assert.Equal(6, leg.Dropped));
    }

    [Fact]
    public async Task A_capture_that_joins_a_tap_made_for_another_has_its_streams_from_then_on_and_reads_clean()
    {
        var early = Bytes(5_000, 9);
        var later = Bytes(7_000, 10);
        var tap = new ConnectionTap("tcp", Client, Listener, fromStart: true);
        tap.Connected(Source, Upstream);
        var first = new CaptureSession("first", CaptureLegs.Both, _ => CaptureMatch.Yes, new CaptureLimits());
        tap.Attach(first);
        tap.ClientLeg.Relayed(early, 0, 0, early.Length);

        // As CaptureHub attaches a capture to a connection already open: the tap is another's, made before.
        var joined = new CaptureSession("joined", CaptureLegs.Both, _ => CaptureMatch.Yes, new CaptureLimits());
        tap.Attach(joined, fromStart: false);
        tap.ClientLeg.Relayed(later, early.Length, early.Length, later.Length);

        using var output = new MemoryStream();
        using var stop = new CancellationTokenSource();
        var run = joined.RunAsync(output, stop.Token);
        await Poll.UntilAsync(() => joined.QueuedBytes == 0, "the capture to take what was offered");
        await stop.CancelAsync();
        await run.WaitAsync(TimeSpan.FromSeconds(10));

        using var dir = new TempDirectory();
        var file = await WriteAsync(dir, output.ToArray());
        Assert.Empty(await Tshark.ProblemsAsync(file));
        var streams = await Tshark.StreamsAsync(file);
        Assert.Equal(later, streams["127.0.0.1:40001 127.0.0.1:19092"].FromOpener);
        Assert.Equal(later, streams["127.0.0.2:40002 127.0.0.1:9092"].FromOpener);
    }
}
