using System.Buffers.Binary;
using System.Net;
using BindProxy.Tests.Infrastructure;

namespace BindProxy.Tests.Capture;

/// <summary>A <c>GET /api/capture</c> in progress: its pcapng collected as it arrives, readable at any moment.</summary>
internal sealed class LiveCapture : IAsyncDisposable
{
    private readonly HttpClient _http;
    private readonly CancellationTokenSource _stop = new();
    private readonly MemoryStream _received = new();
    private readonly Task _reading;
    private readonly Lock _lock = new();

    private LiveCapture(HttpClient http, HttpResponseMessage response)
    {
        _http = http;
        Response = response;
        _reading = ReadAsync();
    }

    public HttpResponseMessage Response { get; }

    /// <summary>Starts the capture; returns once its headers (and section header) have arrived, so it is running.</summary>
    public static async Task<LiveCapture> StartAsync(IPEndPoint admin, string query)
    {
        var http = new HttpClient { BaseAddress = new Uri($"http://{admin}/"), Timeout = Timeout.InfiniteTimeSpan };
        var response = await http.GetAsync("api/capture?" + query, HttpCompletionOption.ResponseHeadersRead).WaitAsync(TimeSpan.FromSeconds(10));
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal("application/x-pcapng", response.Content.Headers.ContentType?.MediaType);
        var capture = new LiveCapture(http, response);
        await Poll.UntilAsync(() => capture.Bytes().Length > 0, "the capture's section header");
        return capture;
    }

    private async Task ReadAsync()
    {
        try
        {
            var body = await Response.Content.ReadAsStreamAsync(_stop.Token);
            var buffer = new byte[64 * 1024];
            int read;
            while ((read = await body.ReadAsync(buffer, _stop.Token)) > 0)
            {
                lock (_lock)
                {
                    _received.Write(buffer, 0, read);
                }
            }
        }
        catch (Exception e) when (e is OperationCanceledException or IOException or HttpRequestException)
        {
        }
    }

    /// <summary>Whether the server has ended the capture (a limit was reached).</summary>
    public bool Ended => _reading.IsCompleted;

    public byte[] Bytes()
    {
        lock (_lock)
        {
            return _received.ToArray();
        }
    }

    public IReadOnlyList<Packet> Packets() => Packet.ReadAll(Bytes());

    /// <summary>Leaves (as a caller that has seen enough does) and returns what arrived.</summary>
    public async Task<byte[]> StopAsync()
    {
        await _stop.CancelAsync();
        await _reading.WaitAsync(TimeSpan.FromSeconds(10));
        return Bytes();
    }

    public async Task<string> SaveAsync(string directory, string name)
    {
        var file = Path.Combine(directory, name);
        await File.WriteAllBytesAsync(file, Bytes());
        return file;
    }

    public async ValueTask DisposeAsync()
    {
        await _stop.CancelAsync();
        await _reading.WaitAsync(TimeSpan.FromSeconds(10));
        Response.Dispose();
        _http.Dispose();
        _stop.Dispose();
    }
}

/// <summary>One IPv4 TCP packet of a pcapng file, as far as tests look at it.</summary>
internal sealed record Packet(int Interface, IPEndPoint From, IPEndPoint To, byte Flags, int PayloadLength, string? Comment)
{
    public bool Fin => (Flags & 0x01) != 0;

    public bool Syn => (Flags & 0x02) != 0;

    public bool Rst => (Flags & 0x04) != 0;

    /// <summary>The packet goes between <paramref name="a"/> and <paramref name="b"/>, either way.</summary>
    public bool Between(IPEndPoint a, IPEndPoint b) => (Same(From, a) && Same(To, b)) || (Same(From, b) && Same(To, a));

    private static bool Same(IPEndPoint x, IPEndPoint y) =>
        x.Port == y.Port && (x.Address.IsIPv4MappedToIPv6 ? x.Address.MapToIPv4() : x.Address).Equals(y.Address.IsIPv4MappedToIPv6 ? y.Address.MapToIPv4() : y.Address);

    /// <summary>The enhanced packet blocks of a pcapng file (a file cut short ends at its last whole block).</summary>
    public static IReadOnlyList<Packet> ReadAll(byte[] file)
    {
        var packets = new List<Packet>();
        int at = 0;
        while (at + 12 <= file.Length)
        {
            uint type = BinaryPrimitives.ReadUInt32LittleEndian(file.AsSpan(at));
            int length = (int)BinaryPrimitives.ReadUInt32LittleEndian(file.AsSpan(at + 4));
            if (length < 12 || at + length > file.Length)
            {
                break;
            }

            if (type == 6)
            {
                int face = (int)BinaryPrimitives.ReadInt32LittleEndian(file.AsSpan(at + 8));
                int captured = (int)BinaryPrimitives.ReadUInt32LittleEndian(file.AsSpan(at + 20));
                var ip = file.AsSpan(at + 28, captured);
                int ihl = (ip[0] & 0x0F) * 4;
                var tcp = ip[ihl..];
                var from = new IPEndPoint(new IPAddress(ip.Slice(12, 4)), BinaryPrimitives.ReadUInt16BigEndian(tcp));
                var to = new IPEndPoint(new IPAddress(ip.Slice(16, 4)), BinaryPrimitives.ReadUInt16BigEndian(tcp[2..]));
                int payload = captured - ihl - (tcp[12] >> 4) * 4;
                string? comment = null;
                int option = at + 28 + ((captured + 3) & ~3);
                if (option + 4 <= at + length - 4 && BinaryPrimitives.ReadUInt16LittleEndian(file.AsSpan(option)) == 1)
                {
                    comment = System.Text.Encoding.UTF8.GetString(file.AsSpan(option + 4, BinaryPrimitives.ReadUInt16LittleEndian(file.AsSpan(option + 2))));
                }

                packets.Add(new Packet(face, from, to, tcp[13], payload, comment));
            }

            at += length;
        }

        return packets;
    }
}
