using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Security;
using System.Net.Sockets;
using System.Text;
using BindProxy.Configuration;
using BindProxy.Tests.Infrastructure;

namespace BindProxy.Tests.Forwarding;

/// <summary>
/// TLS on either side of a route, over real sockets: socat and openssl s_server as TLS upstreams,
/// .NET's SslStream as a TLS client of a <c>ListenTls</c> listener, certificates made here.
/// Every mismatch and refused certificate is one line naming the client, and the client's
/// connection is closed.
/// </summary>
public sealed class TlsForwardingTests : IDisposable
{
    private static readonly TimeSpan Prompt = TimeSpan.FromSeconds(10);

    private readonly TestCertificates _certs = new();

    public void Dispose() => _certs.Dispose();

    private RouteConfig Route(string upstream, Dictionary<string, string?>? tls = null, Dictionary<string, string?>? listenTls = null, string protocol = "Tcp") => new()
    {
        Name = "test",
        Listen = "127.0.0.1:0",
        Upstream = upstream,
        Source = "127.0.0.2",
        Protocol = protocol,
        Tls = tls,
        ListenTls = listenTls,
    };

    private Dictionary<string, string?> TrustingTestCa(params (string Key, string Value)[] more)
    {
        var tls = new Dictionary<string, string?> { ["CaFile"] = _certs.CaFile };
        foreach (var (key, value) in more)
        {
            tls[key] = value;
        }

        return tls;
    }

    private static async Task<string> EchoThroughAsync(IPEndPoint proxy, string text)
    {
        using var client = await SocketExtensions.ConnectAsync(proxy);
        await client.SendAsync(Encoding.ASCII.GetBytes(text));
        return Encoding.ASCII.GetString(await client.ReadExactlyAsync(text.Length));
    }

    [Fact]
    public async Task A_Tcp_route_with_Tls_reaches_a_TLS_upstream_whose_backend_sees_the_plaintext()
    {
        await using var backend = TestServer.Echo();
        await using var terminator = await TlsTerminator.StartAsync(_certs.Combined("server"), backend.Endpoint);
        await using var proxy = await TestProxy.StartAsync(Route($"localhost:{terminator.Port}", TrustingTestCa()));

        Assert.Equal("hello through TLS", await EchoThroughAsync(proxy.Endpoint(), "hello through TLS"));
        await proxy.Logs.WaitForAsync(Prompt, "test:", "open");
    }

    /// <summary>
    /// A reload that gives a plaintext Tcp route a Tls section applies to the connections opened
    /// after it (which move from the relay engine to the pipe path), and one that takes it away
    /// again puts them back in plaintext; the listener stays where it is throughout.
    /// </summary>
    [Fact]
    public async Task A_reload_that_adds_or_removes_Tls_applies_to_new_connections()
    {
        await using var backend = TestServer.Echo();
        await using var terminator = await TlsTerminator.StartAsync(_certs.Combined("server"), backend.Endpoint);
        int listen = TlsTerminator.FreePort();
        var dir = Cli.BindProxyCli.TempDir();
        var file = Path.Combine(dir, "appsettings.json");
        string Config(string tls) =>
            "{ \"BindProxy\": { \"Routes\": { \"test\": { " +
            $"\"Listen\": \"127.0.0.1:{listen}\", \"Upstream\": \"localhost:{terminator.Port}\", \"Source\": \"127.0.0.2\"{tls} }} }} }} }}";
        string withTls = $", \"Tls\": {{ \"CaFile\": \"{_certs.CaFile}\" }}";
        await File.WriteAllTextAsync(file, Config(""), TestContext.Current.CancellationToken);
        await using var proxy = await TestProxy.StartFromFileAsync(file);
        var endpoint = new IPEndPoint(IPAddress.Loopback, listen);

        // Plaintext to a TLS terminator: the terminator refuses it and the client gets nothing back.
        Assert.Empty(await PlaintextAnswerAsync(endpoint, "plain"));

        await File.WriteAllTextAsync(file, Config(withTls), TestContext.Current.CancellationToken);
        await proxy.Logs.WaitForAsync(Prompt, "Reload: route test changed: Tls");
        Assert.Equal("after the reload", await EchoThroughAsync(endpoint, "after the reload"));

        await File.WriteAllTextAsync(file, Config(""), TestContext.Current.CancellationToken);
        await Poll.UntilAsync(() => proxy.Logs.Messages.Count(m => m.Contains("Reload: route test changed: Tls", StringComparison.Ordinal)) >= 2,
            "the second reload, which takes Tls away");
        Assert.Empty(await PlaintextAnswerAsync(endpoint, "plain again"));
    }

    /// <summary>What a TLS upstream answers plaintext sent through the route: nothing, whether it closes or resets.</summary>
    private static async Task<byte[]> PlaintextAnswerAsync(IPEndPoint proxy, string text)
    {
        using var client = await SocketExtensions.ConnectAsync(proxy);
        await client.SendAsync(Encoding.ASCII.GetBytes(text));
        try
        {
            return await client.ReadToEndAsync();
        }
        catch (SocketException e) when (e.SocketErrorCode == SocketError.ConnectionReset)
        {
            return [];
        }
    }

    [Fact]
    public async Task A_Tcp_route_with_Tls_talks_to_openssl_s_server()
    {
        var openssl = ExternalTool.Require("openssl");
        int port = TlsTerminator.FreePort();
        var info = new ProcessStartInfo(openssl) { UseShellExecute = false, RedirectStandardOutput = true, RedirectStandardError = true, RedirectStandardInput = true };
        foreach (var arg in new[] { "s_server", "-accept", $"127.0.0.1:{port}", "-cert", _certs.Cert("server"), "-key", _certs.Key("server"), "-rev", "-quiet", "-naccept", "1" })
        {
            info.ArgumentList.Add(arg);
        }

        using var server = Process.Start(info)!;
        server.BeginOutputReadLine();
        server.BeginErrorReadLine();
        try
        {
            await using var proxy = await TestProxy.StartAsync(Route($"127.0.0.1:{port}", TrustingTestCa(("ServerName", "localhost"))));
            string reply = await Poll.UntilAsync(async () =>
            {
                try
                {
                    return await EchoThroughAsync(proxy.Endpoint(), "hello\n");
                }
                catch (Exception e) when (e is SocketException or IOException or TimeoutException)
                {
                    return "";
                }
            }, r => r.Length > 0, "a reply from openssl s_server through the route");
            Assert.Equal("olleh\n", reply);
        }
        finally
        {
            server.Kill();
        }
    }

    [Theory]
    [InlineData("untrusted", "signed by CN=Someone else's CA, which Tls:CaFile (")]
    [InlineData("expired", "presented a certificate, CN=localhost, that expired on ")]
    [InlineData("wrong-name", "presented a certificate for other.example, not localhost (name mismatch); set Tls:ServerName")]
    public async Task A_refused_upstream_certificate_is_one_line_with_host_reason_and_fix(string certificate, string reason)
    {
        await using var backend = TestServer.Echo();
        await using var terminator = await TlsTerminator.StartAsync(_certs.Combined(certificate), backend.Endpoint);
        await using var proxy = await TestProxy.StartAsync(Route($"localhost:{terminator.Port}", TrustingTestCa()));

        using var client = await SocketExtensions.ConnectAsync(proxy.Endpoint());
        await client.SendAsync("x"u8.ToArray());
        Assert.Empty(await client.ReadToEndAsync());
        var line = await proxy.Logs.WaitForAsync(Prompt, "closed: TLS to the upstream (localhost): the upstream ", reason);
        Assert.Contains(client.LocalEndPoint!.ToString()!, line, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Insecure_accepts_a_certificate_nobody_trusts()
    {
        await using var backend = TestServer.Echo();
        await using var terminator = await TlsTerminator.StartAsync(_certs.Combined("untrusted"), backend.Endpoint);
        await using var proxy = await TestProxy.StartAsync(Route($"localhost:{terminator.Port}", new() { ["Insecure"] = "true" }));
        Assert.Equal("anyway", await EchoThroughAsync(proxy.Endpoint(), "anyway"));
    }

    [Fact]
    public async Task Mutual_TLS_works_with_the_client_certificate_and_without_it_says_so()
    {
        await using var backend = TestServer.Echo();
        await using var terminator = await TlsTerminator.StartAsync(_certs.Combined("server"), backend.Endpoint, clientCa: _certs.CaFile);

        await using (var with = await TestProxy.StartAsync(Route($"localhost:{terminator.Port}",
            TrustingTestCa(("CertificateFile", _certs.Cert("client")), ("KeyFile", _certs.Key("client"))))))
        {
            Assert.Equal("mutual", await EchoThroughAsync(with.Endpoint(), "mutual"));
        }

        await using var without = await TestProxy.StartAsync(Route($"localhost:{terminator.Port}", TrustingTestCa()));
        using var client = await SocketExtensions.ConnectAsync(without.Endpoint());
        await client.SendAsync("x"u8.ToArray());
        Assert.Empty(await client.ReadToEndAsync());
        client.Close();
        var line = await without.Logs.WaitForAsync(Prompt, "test:", "closed: TLS to the upstream (localhost): the upstream ", "certificate required");
        Assert.DoesNotContain(without.Logs.Messages, m => m.Contains("test:", StringComparison.Ordinal) && m.Contains("closed: upstream FIN", StringComparison.Ordinal));
    }

    [Fact]
    public async Task A_plaintext_upstream_behind_Tls_is_said_to_listen_in_plaintext()
    {
        await using var upstream = TestServer.Start(async (socket, ct) =>
        {
            await socket.SendAsync("220 plaintext service ready\r\n"u8.ToArray(), ct);
            await socket.ReceiveAsync(new byte[1024], ct);
        });
        await using var proxy = await TestProxy.StartAsync(Route(upstream.Address, TrustingTestCa(("ServerName", "localhost"))));

        using var client = await SocketExtensions.ConnectAsync(proxy.Endpoint());
        Assert.Empty(await client.ReadToEndAsync());
        await proxy.Logs.WaitForAsync(Prompt, "the upstream answered the TLS handshake with bytes that are not TLS: it listens in plaintext; remove Tls");
    }

    [Fact]
    public async Task A_ListenTls_listener_serves_a_TLS_client_and_the_upstream_sees_plaintext()
    {
        await using var upstream = TestServer.Echo();
        await using var proxy = await TestProxy.StartAsync(Route(upstream.Address, listenTls: new()
        {
            ["CertificateFile"] = _certs.Cert("server"),
            ["KeyFile"] = _certs.Key("server"),
        }));

        using var socket = await SocketExtensions.ConnectAsync(proxy.Endpoint());
        await using var tls = new SslStream(new NetworkStream(socket), leaveInnerStreamOpen: false);
        await tls.AuthenticateAsClientAsync(new SslClientAuthenticationOptions
        {
            TargetHost = "localhost",
            CertificateChainPolicy = Policy(_certs.CaFile),
        }, TestContext.Current.CancellationToken);
        await tls.WriteAsync("over TLS"u8.ToArray(), TestContext.Current.CancellationToken);
        var read = new byte[8];
        await tls.ReadExactlyAsync(read, TestContext.Current.CancellationToken);
        Assert.Equal("over TLS", Encoding.ASCII.GetString(read));
    }

    [Fact]
    public async Task Plaintext_on_a_TLS_listener_is_one_line_and_the_client_is_closed()
    {
        await using var upstream = TestServer.Echo();
        await using var proxy = await TestProxy.StartAsync(Route(upstream.Address, listenTls: new() { ["CertificateFile"] = _certs.Combined("server") }));

        using var client = await SocketExtensions.ConnectAsync(proxy.Endpoint());
        await client.SendAsync("plain words"u8.ToArray());
        await client.WaitForCloseAsync(Prompt);
        await proxy.Logs.WaitForAsync(Prompt, "test: ", "closed: TLS on the listener: the client sent plaintext (first byte 0x70) to a TLS listener");
        Assert.Empty(upstream.Accepted);
    }

    [Fact]
    public async Task A_client_that_sends_nothing_to_a_TLS_listener_is_closed_after_the_handshake_timeout()
    {
        await using var upstream = TestServer.Echo();
        await using var proxy = await TestProxy.StartAsync(Route(upstream.Address, listenTls: new()
        {
            ["CertificateFile"] = _certs.Combined("server"),
            ["HandshakeTimeout"] = "00:00:00.5",
        }));

        using var client = await SocketExtensions.ConnectAsync(proxy.Endpoint());
        await client.WaitForCloseAsync(Prompt);
        await proxy.Logs.WaitForAsync(Prompt, "closed: TLS on the listener: the client sent nothing within the handshake timeout (0.5 s)");
        Assert.Empty(upstream.Accepted);
    }

    /// <summary>
    /// The handshake timeout bounds the whole handshake: a client that sends a TLS record's first
    /// byte late and then nothing more is closed when the timeout has passed since it connected,
    /// not a second timeout after that byte.
    /// </summary>
    [Fact]
    public async Task A_client_that_starts_its_handshake_late_and_stalls_is_closed_one_timeout_after_it_connected()
    {
        var handshakeTimeout = TimeSpan.FromSeconds(2);
        await using var upstream = TestServer.Echo();
        await using var proxy = await TestProxy.StartAsync(Route(upstream.Address, listenTls: new()
        {
            ["CertificateFile"] = _certs.Combined("server"),
            ["HandshakeTimeout"] = "00:00:02",
        }));

        using var client = await SocketExtensions.ConnectAsync(proxy.Endpoint());
        var connected = Stopwatch.GetTimestamp();
        await Poll.UntilAsync(() => Stopwatch.GetElapsedTime(connected) >= handshakeTimeout * 0.6, "most of the handshake timeout to pass", Prompt);
        await client.SendAsync(new byte[] { 0x16 });
        await client.WaitForCloseAsync(Prompt);
        var closedAfter = Stopwatch.GetElapsedTime(connected);
        Assert.True(closedAfter < handshakeTimeout * 1.3, $"closed {closedAfter.TotalMilliseconds:0} ms after connecting; the handshake timeout is {handshakeTimeout.TotalMilliseconds:0} ms");
        await proxy.Logs.WaitForAsync(Prompt, "closed: TLS on the listener: the client did not finish the TLS handshake within 2 s");
        Assert.Empty(upstream.Accepted);
    }

    /// <summary>
    /// Two hundred clients at once fail their handshake on a TLS listener in each way a client can
    /// (silent; plaintext; a TLS record cut short; 0x16 followed by bytes that are not TLS; a real
    /// ClientHello, which costs the proxy its half of the handshake, and then silence) while a good client keeps exchanging messages,
    /// on a connection it holds and on a new connection each round: no good exchange waits as long
    /// as a bad client is given, every bad client is closed within the handshake timeout, each is
    /// one line naming it and one <c>tls_handshake</c> rejection, and none reaches the upstream.
    /// </summary>
    [Fact]
    public async Task A_storm_of_failing_TLS_handshakes_holds_up_no_other_client()
    {
        const int Bad = 200;
        const int Kinds = 5;
        var handshakeTimeout = TimeSpan.FromSeconds(3);
        var goodBound = TimeSpan.FromSeconds(2);
        var closeBound = handshakeTimeout + TimeSpan.FromSeconds(5);
        var ct = TestContext.Current.CancellationToken;
        await using var upstream = TestServer.Echo();
        await using var admin = await Admin.AdminProxy.StartAsync(Route(upstream.Address, listenTls: new()
        {
            ["CertificateFile"] = _certs.Combined("server"),
            ["HandshakeTimeout"] = "00:00:03",
        }));
        var endpoint = admin.Proxy.Endpoint();
        await using var held = await TlsClientAsync(endpoint, ct);
        await TlsEchoAsync(held, "before the storm", ct);

        var hello = await ClientHelloAsync(ct);
        var bad = Enumerable.Range(0, Bad).Select(i => FailingTlsClientAsync(endpoint, i % Kinds, hello, closeBound, ct)).ToArray();
        var storm = Task.WhenAll(bad);
        var exchanges = new List<(string What, TimeSpan Took, bool DuringStorm)>();
        int fresh = 0;
        for (int round = 0; round < 2000 && (!storm.IsCompleted || round < 3); round++)
        {
            bool during = !storm.IsCompleted;
            using var cap = CancellationTokenSource.CreateLinkedTokenSource(ct);
            cap.CancelAfter(Prompt);
            var started = Stopwatch.GetTimestamp();
            await TlsEchoAsync(held, $"held {round}", cap.Token);
            exchanges.Add(($"round {round} on the held connection", Stopwatch.GetElapsedTime(started), during));

            started = Stopwatch.GetTimestamp();
            await using (var tls = await TlsClientAsync(endpoint, cap.Token))
            {
                fresh++;
                await TlsEchoAsync(tls, $"new {round}", cap.Token);
            }

            exchanges.Add(($"round {round} on a new connection", Stopwatch.GetElapsedTime(started), during));
        }

        var results = await storm;
        TestContext.Current.TestOutputHelper?.WriteLine(
            $"good exchanges: {exchanges.Count} ({exchanges.Count(e => e.DuringStorm)} during the storm), slowest {exchanges.Max(e => e.Took).TotalMilliseconds:0} ms; " +
            string.Join(", ", results.GroupBy(r => r.Kind).OrderBy(g => g.Key).Select(g => $"kind {g.Key} closed after at most {g.Max(r => r.Closed ?? TimeSpan.MaxValue).TotalMilliseconds:0} ms")));
        var slow = exchanges.Where(e => e.Took > goodBound).Select(e => $"{e.What}: {e.Took.TotalMilliseconds:0} ms").ToList();
        Assert.True(slow.Count == 0, $"good exchanges slower than {goodBound.TotalSeconds} s during the storm: {string.Join("; ", slow)}");
        Assert.True(exchanges.Count(e => e.DuringStorm) >= 6,
            $"only {exchanges.Count(e => e.DuringStorm)} good exchanges overlapped the storm; the test did not measure what it means to");

        // Every bad client was closed by the proxy: within the timeout, and at once where its mistake is plain.
        var open = results.Where(r => r.Closed is null).Select(r => $"{r.Client} (kind {r.Kind})").ToList();
        Assert.True(open.Count == 0, $"not closed within {closeBound.TotalSeconds} s: {string.Join(", ", open)}");
        var late = results.Where(r => r.Kind == 1 && r.Closed >= handshakeTimeout).Select(r => $"{r.Client} (kind {r.Kind}) after {r.Closed!.Value.TotalMilliseconds:0} ms").ToList();
        Assert.True(late.Count == 0, $"clients whose mistake was plain waited for the handshake timeout: {string.Join(", ", late)}");

        // Each is counted once, as a line that names it and as a tls_handshake rejection, and none reached the upstream.
        await Admin.MetricsTests.WaitForMetricAsync(admin, "bindproxy_connections_rejected_total", Bad, ("route", "test"), ("reason", "tls_handshake"));
        var lines = admin.Proxy.Logs.Messages.Where(m => m.Contains(" closed: TLS on the listener: the client ", StringComparison.Ordinal)).ToList();
        Assert.Equal(Bad, lines.Count);
        var unnamed = results.Where(r => !lines.Any(l => l.StartsWith($"test: {r.Client} closed: ", StringComparison.Ordinal))).Select(r => r.Client).ToList();
        Assert.True(unnamed.Count == 0, $"bad clients with no line of their own: {string.Join(", ", unnamed)}");
        Assert.Equal(1 + fresh, upstream.Accepted.Count);
    }

    /// <summary>
    /// The first record a .NET TLS client sends, its ClientHello, taken from a listener of the test's
    /// own that never answers it.
    /// </summary>
    private static async Task<byte[]> ClientHelloAsync(CancellationToken cancellationToken)
    {
        using var listener = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        listener.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        listener.Listen(1);
        using var client = await SocketExtensions.ConnectAsync((IPEndPoint)listener.LocalEndPoint!);
        using var server = await listener.AcceptAsync(cancellationToken);
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        await using var tls = new SslStream(new NetworkStream(client, ownsSocket: false), leaveInnerStreamOpen: true);
        var handshake = tls.AuthenticateAsClientAsync(new SslClientAuthenticationOptions { TargetHost = "localhost" }, stop.Token);
        var header = await server.ReadExactlyAsync(5);
        Assert.Equal(0x16, header[0]);
        var body = await server.ReadExactlyAsync((header[3] << 8) | header[4]);
        await stop.CancelAsync();
        await Assert.ThrowsAnyAsync<Exception>(() => handshake);
        return [.. header, .. body];
    }

    /// <summary>A TLS client of a <c>ListenTls</c> listener that trusts the test CA, handshake done.</summary>
    private async Task<SslStream> TlsClientAsync(IPEndPoint endpoint, CancellationToken cancellationToken)
    {
        var socket = await SocketExtensions.ConnectAsync(endpoint);
        var tls = new SslStream(new NetworkStream(socket, ownsSocket: true), leaveInnerStreamOpen: false);
        try
        {
            await tls.AuthenticateAsClientAsync(new SslClientAuthenticationOptions { TargetHost = "localhost", CertificateChainPolicy = Policy(_certs.CaFile) }, cancellationToken);
            return tls;
        }
        catch
        {
            await tls.DisposeAsync();
            throw;
        }
    }

    private static async Task TlsEchoAsync(SslStream tls, string text, CancellationToken cancellationToken)
    {
        await tls.WriteAsync(Encoding.ASCII.GetBytes(text), cancellationToken);
        var read = new byte[text.Length];
        await tls.ReadExactlyAsync(read, cancellationToken);
        Assert.Equal(text, Encoding.ASCII.GetString(read));
    }

    /// <summary>
    /// A client that fails its handshake on a TLS listener, one way per <paramref name="kind"/>:
    /// 0 sends nothing, 1 plaintext, 2 a ClientHello record cut short, 3 0x16 and then bytes that are
    /// not TLS, 4 a real ClientHello (<paramref name="hello"/>) and then nothing. Returns how long
    /// the proxy took to close it (null: not within <paramref name="closeBound"/>).
    /// </summary>
    private static async Task<(string Client, int Kind, TimeSpan? Closed)> FailingTlsClientAsync(IPEndPoint endpoint, int kind, byte[] hello, TimeSpan closeBound,
        CancellationToken cancellationToken)
    {
        var started = Stopwatch.GetTimestamp();
        using var socket = await SocketExtensions.ConnectAsync(endpoint);
        string client = socket.LocalEndPoint!.ToString()!;
        byte[] cutShort = [0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00, 0x01, 0xfc, 0x03, 0x03];
        byte[] notTls = [0x16, 0xfe, 0xfe, 0x00, 0x08, 0xde, 0xad, 0xbe, 0xef, 0xde, 0xad, 0xbe, 0xef];
        switch (kind)
        {
            case 1:
                await socket.SendAsync("GET / HTTP/1.1\r\nHost: localhost\r\n\r\n"u8.ToArray(), cancellationToken);
                break;
            case 2:
                await socket.SendAsync(cutShort, cancellationToken);
                break;
            case 3:
                await socket.SendAsync(notTls, cancellationToken);
                break;
            case 4:
                await socket.SendAsync(hello, cancellationToken);
                break;
        }

        try
        {
            await socket.WaitForCloseAsync(closeBound);
            return (client, kind, Stopwatch.GetElapsedTime(started));
        }
        catch (OperationCanceledException)
        {
            return (client, kind, null);
        }
    }

    [Fact]
    public async Task A_TLS_ClientHello_on_a_plaintext_Kafka_listener_is_one_line_naming_the_setting()
    {
        await using var upstream = TestServer.Echo();
        await using var proxy = await TestProxy.StartAsync(Route(upstream.Address, protocol: "Kafka"));

        using var socket = await SocketExtensions.ConnectAsync(proxy.Endpoint());
        await using var tls = new SslStream(new NetworkStream(socket), leaveInnerStreamOpen: false);
        await Assert.ThrowsAnyAsync<Exception>(() => tls.AuthenticateAsClientAsync(new SslClientAuthenticationOptions { TargetHost = "localhost" }, TestContext.Current.CancellationToken));
        var line = await proxy.Logs.WaitForAsync(Prompt, "closed: the client sent a TLS ClientHello, but the route listens in plaintext; set the client to plaintext (security.protocol=PLAINTEXT), or give the route ListenTls");
        Assert.Contains(socket.LocalEndPoint!.ToString()!, line, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_TLS_broker_reached_in_plaintext_is_said_to_expect_TLS()
    {
        await using var backend = TestServer.Echo();
        await using var terminator = await TlsTerminator.StartAsync(_certs.Combined("server"), backend.Endpoint);
        await using var proxy = await TestProxy.StartAsync(Route(terminator.Address, protocol: "Kafka"));

        // An ApiVersions v0 request: what any Kafka client sends first.
        byte[] request = [0, 0, 0, 14, 0, 18, 0, 0, 0, 0, 0, 1, 0, 4, (byte)'k', (byte)'c', (byte)'a', (byte)'t'];
        using var client = await SocketExtensions.ConnectAsync(proxy.Endpoint());
        await client.SendAsync(request);
        await client.WaitForCloseAsync(Prompt);
        var line = await proxy.Logs.WaitForAsync(Prompt, "test: ", "expects TLS; give the route \"Tls\": { \"Enabled\": true }");
        Assert.Contains(client.LocalEndPoint!.ToString()!, line, StringComparison.Ordinal);
    }

    [Fact]
    public async Task The_admin_API_shows_each_sides_TLS_and_what_the_latest_connection_negotiated()
    {
        await using var backend = TestServer.Echo();
        await using var terminator = await TlsTerminator.StartAsync(_certs.Combined("server"), backend.Endpoint);
        await using var admin = await Admin.AdminProxy.StartAsync(Route($"localhost:{terminator.Port}", TrustingTestCa(),
            listenTls: new() { ["CertificateFile"] = _certs.Combined("server") }));

        using (var socket = await SocketExtensions.ConnectAsync(admin.Proxy.Endpoint()))
        await using (var tls = new SslStream(new NetworkStream(socket), leaveInnerStreamOpen: false))
        {
            await tls.AuthenticateAsClientAsync(new SslClientAuthenticationOptions { TargetHost = "localhost", CertificateChainPolicy = Policy(_certs.CaFile) },
                TestContext.Current.CancellationToken);
            await tls.WriteAsync("seen"u8.ToArray(), TestContext.Current.CancellationToken);
            await tls.ReadExactlyAsync(new byte[4], TestContext.Current.CancellationToken);
        }

        var route = (await admin.GetJsonAsync("api/routes"))[0].GetProperty("tls");
        Assert.StartsWith("CAs of " + _certs.CaFile, route.GetProperty("upstream").GetString(), StringComparison.Ordinal);
        Assert.StartsWith("certificate CN=localhost", route.GetProperty("listener").GetString(), StringComparison.Ordinal);
        Assert.False(route.GetProperty("insecure").GetBoolean());
        var peer = route.GetProperty("upstreamPeer");
        Assert.StartsWith("TLS 1.", peer.GetProperty("version").GetString(), StringComparison.Ordinal);
        Assert.StartsWith("TLS_", peer.GetProperty("cipher").GetString(), StringComparison.Ordinal);
        Assert.Equal("CN=localhost", peer.GetProperty("subject").GetString());
        Assert.True(peer.GetProperty("notAfter").GetDateTimeOffset() > DateTimeOffset.UtcNow);
        Assert.StartsWith("TLS 1.", route.GetProperty("clientPeer").GetProperty("version").GetString(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task An_Http_route_with_Tls_reaches_an_https_upstream_through_YARPs_own_TLS()
    {
        await using var server = await Http.HttpTestServer.StartAsync();
        await using var terminator = await TlsTerminator.StartAsync(_certs.Combined("server"), IPEndPoint.Parse(server.Address));
        var route = Http.HttpRouteTests.Route($"localhost:{terminator.Port}") with { Tls = TrustingTestCa() };
        await using var proxy = await TestProxy.StartAsync(route);
        using var client = Http.HttpRouteTests.Client(proxy);

        using var response = await client.GetAsync("whoami", TestContext.Current.CancellationToken);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Contains($"localhost:{terminator.Port}", await response.Content.ReadAsStringAsync(TestContext.Current.CancellationToken), StringComparison.Ordinal);

        // A certificate for another name is refused by the same settings.
        await using var wrong = await TlsTerminator.StartAsync(_certs.Combined("wrong-name"), IPEndPoint.Parse(server.Address));
        await using var refusing = await TestProxy.StartAsync(Http.HttpRouteTests.Route($"localhost:{wrong.Port}") with { Tls = TrustingTestCa() });
        using var refused = await Http.HttpRouteTests.Client(refusing).GetAsync("whoami", TestContext.Current.CancellationToken);
        Assert.Equal(HttpStatusCode.BadGateway, refused.StatusCode);
    }

    internal static System.Security.Cryptography.X509Certificates.X509ChainPolicy Policy(string caFile)
    {
        var policy = new System.Security.Cryptography.X509Certificates.X509ChainPolicy
        {
            TrustMode = System.Security.Cryptography.X509Certificates.X509ChainTrustMode.CustomRootTrust,
            RevocationMode = System.Security.Cryptography.X509Certificates.X509RevocationMode.NoCheck,
        };
        policy.CustomTrustStore.ImportFromPemFile(caFile);
        return policy;
    }
}
