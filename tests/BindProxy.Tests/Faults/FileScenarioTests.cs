using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Text.Json;
using BindProxy.Addressing;
using BindProxy.Configuration;
using BindProxy.Demo;
using BindProxy.Faults;
using BindProxy.Tests.Cli;
using BindProxy.Tests.Infrastructure;
using BindProxy.Tests.Kafka;
using Confluent.Kafka;
using Microsoft.Extensions.DependencyInjection;

namespace BindProxy.Tests.Faults;

/// <summary>
/// A fault scenario in the configuration file: a route's <c>Faults</c>, toxics in toxiproxy's
/// shape, applied at startup, checked like the fault API's 400s, and replaced by a reload without
/// touching listeners, open connections or the toxics added through the API.
/// </summary>
public sealed class FileScenarioTests(ITestOutputHelper output)
{
    private static readonly TimeSpan Prompt = TimeSpan.FromSeconds(10);

    /// <summary>Route "test" with <paramref name="faults"/> (a JSON array, or null for none) and route "plain" without, to one upstream, with the fault API.</summary>
    private static string Config(string engine, string upstream, string? faults) => $$"""
        {
          "BindProxy": {
            "Engine": "{{engine}}",
            "Routes": {
              "test": { "Listen": "127.0.0.1:0", "Upstream": "{{upstream}}", "Source": "127.0.0.2"{{(faults is null ? "" : $", \"Faults\": {faults}")}} },
              "plain": { "Listen": "127.0.0.1:0", "Upstream": "{{upstream}}", "Source": "127.0.0.2" }
            }
          },
          "Faults": { "Listen": "127.0.0.1:0" },
          "Admin": { "Listen": "127.0.0.1:0" }
        }
        """;

    private static async Task<string> WriteAsync(string json, string? file = null)
    {
        file ??= Path.Combine(Path.GetTempPath(), $"bindproxy-scenario-{Guid.NewGuid():n}.json");
        await File.WriteAllTextAsync(file, json, TestContext.Current.CancellationToken);
        return file;
    }

    /// <summary>The route's toxics as the fault API lists them: name → (origin, the toxic).</summary>
    private static async Task<Dictionary<string, (string Origin, JsonElement Toxic)>> ToxicsAsync(FaultProxy faults, string route = "test")
    {
        var (status, body) = await faults.SendAsync(HttpMethod.Get, $"proxies/{route}/toxics");
        Assert.Equal(HttpStatusCode.OK, status);
        return body.EnumerateArray().ToDictionary(t => t.GetProperty("name").GetString()!, t => (t.GetProperty("origin").GetString()!, t));
    }

    [Theory]
    [MemberData(nameof(Engines.Tcp), MemberType = typeof(Engines))]
    public async Task A_route_starts_with_the_toxics_of_its_Faults_and_a_latency_toxic_adds_its_latency(string engine)
    {
        await using var upstream = TestServer.Echo();
        var file = await WriteAsync(Config(engine, upstream.Address, """[{ "name": "slow", "type": "latency", "attributes": { "latency": 100 } }]"""));
        await using var faults = await FaultProxy.StartFromFileAsync(file);
        await faults.Proxy.Logs.WaitForAsync(Prompt, "Faults: route test: toxic slow added from the configuration file: latency downstream toxicity 1: latency=100 jitter=0");

        // The first connection meets it: the route with the toxic against the one without, same upstream.
        using var plain = await SocketExtensions.ConnectAsync(faults.Proxy.Endpoint("plain"));
        using var toxic = await SocketExtensions.ConnectAsync(faults.Proxy.Endpoint("test"));
        double baseline = await plain.MedianRoundTripMsAsync(11);
        double slow = await toxic.MedianRoundTripMsAsync(11);
        output.WriteLine($"{engine}: round trip {baseline:0.0} ms on the route without Faults, {slow:0.0} ms on the one with latency 100: +{slow - baseline:0.0} ms");
        Assert.InRange(slow - baseline, 85, 115);

        // The API lists it, with where it came from; the other route has none.
        var toxics = await ToxicsAsync(faults);
        Assert.Equal(["slow"], toxics.Keys);
        Assert.Equal("file", toxics["slow"].Origin);
        Assert.Equal(100, toxics["slow"].Toxic.GetProperty("attributes").GetProperty("latency").GetInt32());
        Assert.Empty(await ToxicsAsync(faults, "plain"));

        // The status page's data says so too.
        var admin = faults.Proxy.Services.GetRequiredService<BindProxy.Admin.AdminEndpoint>().BoundEndPoint!;
        using var http = new HttpClient { BaseAddress = new Uri($"http://{admin}/") };
        var routes = JsonDocument.Parse(await http.GetStringAsync(new Uri("api/routes", UriKind.Relative), TestContext.Current.CancellationToken)).RootElement;
        var shown = routes.EnumerateArray().Single(r => r.GetProperty("name").GetString() == "test").GetProperty("toxics");
        Assert.Equal("slow: latency downstream toxicity 1: latency=100 jitter=0 (from the configuration file)", Assert.Single(shown.EnumerateArray()).GetString());
    }

    [Fact]
    public async Task Every_mistake_in_Faults_is_reported_at_once_with_its_place_in_the_fault_APIs_words_and_the_proxy_does_not_start()
    {
        await using var upstream = TestServer.Echo();
        string[] toxics =
        [
            """{ "type": "latency", "attributes": { "latency": "x" } }""",
            """{ "type": "earthquake" }""",
            """{ "type": "latency", "stream": "sideways", "toxicity": 2, "atributes": { "latency": 1 } }""",
            """{ "type": "latency", "attributes": { "latency": 5, "delay": 3 }, "match": { "client_id": "(", "pid": -1 } }""",
            """{ "type": "latency" }""",
            """{ "type": "latency", "attributes": { "jitter": 3 } }""",
        ];
        var json = $$"""
            {
              "BindProxy": {
                "Routes": {
                  "kafka": { "Listen": "127.0.0.1:0", "Upstream": "{{upstream.Address}}", "Source": "127.0.0.2", "Faults": [ {{string.Join(", ", toxics)}} ] },
                  "web": { "Listen": "127.0.0.1:0", "Upstream": "{{upstream.Address}}", "Source": "127.0.0.2", "Protocol": "Http", "Faults": [ { "type": "latency" } ] },
                  "one": { "Listen": "127.0.0.1:0", "Upstream": "{{upstream.Address}}", "Source": "127.0.0.2", "Faults": { "type": "latency" } }
                }
              }
            }
            """;
        var file = await WriteAsync(json);
        var configuration = ConfigLoader.Load(file, required: true, out var loadError);
        Assert.Null(loadError);
        var result = await new ConfigValidator(new SourceAddressProbe(), toxics: TestProxy.Toxics).ValidateAsync(ConfigReader.Read(configuration), CancellationToken.None);
        Assert.False(result.IsValid);
        var errors = result.Errors.Select(e => e.ToString()).Where(e => e.Contains("Faults", StringComparison.Ordinal)).ToList();
        output.WriteLine(string.Join("\n", errors));

        // Each message is the fault API's 400 for that toxic part, word for word.
        static string Api(string toxic) { ToxicJson.Create(JsonDocument.Parse(toxic).RootElement, out var problem, TestProxy.Toxics.TextCheck); return problem!; }
        string[] expected =
        [
            $"route 'kafka': Faults:0:attributes:latency: {Api("""{ "type": "latency", "attributes": { "latency": "x" } }""")}",
            $"route 'kafka': Faults:1:type: {Api("""{ "type": "earthquake" }""")}",
            "route 'kafka': Faults:2:atributes: is not a key of a toxic; did you mean 'attributes'? A toxic has name, type, stream, toxicity, attributes, match",
            $"route 'kafka': Faults:2:stream: {Api("""{ "type": "latency", "stream": "sideways" }""")}",
            $"route 'kafka': Faults:2:toxicity: {Api("""{ "type": "latency", "toxicity": 2 }""")}",
            $"route 'kafka': Faults:3:attributes:delay: {Api("""{ "type": "latency", "attributes": { "delay": 3 } }""")}",
            $"route 'kafka': Faults:3:match:client_id: {Api("""{ "type": "latency", "match": { "client_id": "(" } }""")}",
            $"route 'kafka': Faults:3:match:pid: {Api("""{ "type": "latency", "match": { "pid": -1 } }""")}",
            "route 'kafka': Faults:5:name: toxic already exists: latency_downstream is also toxic 4's name (a name defaults to TYPE_STREAM)",
            "route 'web': Faults: applies to Tcp and Kafka routes; an Http route's requests do not pass through toxics",
            "route 'one': Faults: expected a JSON array of objects, found an object",
        ];
        Assert.Equal(expected.Order(StringComparer.Ordinal), errors.Order(StringComparer.Ordinal));
        Assert.Contains("latency has no attribute 'delay'", expected[5], StringComparison.Ordinal);

        // The proxy does not start: one line on stderr with every one of them.
        var (exit, _, err) = await BindProxyCli.RunAsync(BindProxyCli.TempDir(), "--config", file);
        Assert.Equal(1, exit);
        Assert.All(expected, e => Assert.Contains(e, err, StringComparison.Ordinal));
    }

    [Fact]
    public async Task A_reload_with_a_bad_toxic_is_rejected_and_the_toxics_stay()
    {
        await using var upstream = TestServer.Echo();
        var file = await WriteAsync(Config("pipes", upstream.Address, """[{ "name": "slow", "type": "latency", "attributes": { "latency": 100 } }]"""));
        await using var faults = await FaultProxy.StartFromFileAsync(file);
        await faults.Proxy.Logs.WaitForAsync(Prompt, "toxic slow added from the configuration file");

        await WriteAsync(Config("pipes", upstream.Address, """[{ "name": "slow", "type": "latency", "attributes": { "latency": -5 } }, { "type": "bandwidth" }]"""), file);
        await faults.Proxy.Logs.WaitForAsync(Prompt, "Reload rejected, the running configuration stays", "route 'test': Faults:0:attributes:latency: latency attribute latency must be a whole number of 0 or more; got -5");
        var toxics = await ToxicsAsync(faults);
        Assert.Equal(["slow"], toxics.Keys);
        Assert.Equal(100, toxics["slow"].Toxic.GetProperty("attributes").GetProperty("latency").GetInt32());
        Assert.DoesNotContain(faults.Proxy.Logs.Messages, m => m.Contains("bandwidth", StringComparison.Ordinal) && m.StartsWith("Faults:", StringComparison.Ordinal));
    }

    [Theory]
    [MemberData(nameof(Engines.Tcp), MemberType = typeof(Engines))]
    public async Task A_reload_adds_changes_and_removes_toxics_on_open_connections_and_drops_none(string engine)
    {
        await using var upstream = TestServer.Echo();
        var file = await WriteAsync(Config(engine, upstream.Address, """[{ "name": "a", "type": "latency", "attributes": { "latency": 50 } }]"""));
        await using var faults = await FaultProxy.StartFromFileAsync(file);
        await faults.Proxy.Logs.WaitForAsync(Prompt, "toxic a added from the configuration file");

        // Opened while the route has a toxic: on the pipe path whatever the engine, where toxics reach open connections.
        using var open = await SocketExtensions.ConnectAsync(faults.Proxy.Endpoint("test"));
        using var plain = await SocketExtensions.ConnectAsync(faults.Proxy.Endpoint("plain"));
        double baseline = await plain.MedianRoundTripMsAsync(5);
        double first = await open.MedianRoundTripMsAsync(5);
        Assert.InRange(first - baseline, 40, 65);

        // Changed (a: 150 ms downstream) and added (b: 100 ms upstream): the open connection pays both.
        await WriteAsync(Config(engine, upstream.Address, """
            [{ "name": "a", "type": "latency", "attributes": { "latency": 150 } },
             { "name": "b", "type": "latency", "stream": "upstream", "attributes": { "latency": 100 } }]
            """), file);
        await faults.Proxy.Logs.WaitForAsync(Prompt, "Faults: route test: toxic a changed from the configuration file: latency downstream toxicity 1: latency=150 jitter=0");
        await faults.Proxy.Logs.WaitForAsync(Prompt, "Faults: route test: toxic b added from the configuration file: latency upstream toxicity 1: latency=100 jitter=0");
        double both = await open.MedianRoundTripMsAsync(5);
        using var fresh = await SocketExtensions.ConnectAsync(faults.Proxy.Endpoint("test"));
        double freshBoth = await fresh.MedianRoundTripMsAsync(5);
        output.WriteLine($"{engine}: round trip {baseline:0.0} ms without, {first:0.0} ms with a=50, {both:0.0} ms (open) and {freshBoth:0.0} ms (new) with a=150 and b=100");
        Assert.InRange(both - baseline, 230, 280);
        Assert.InRange(freshBoth - baseline, 230, 280);

        // Removed: the open connections go on without them.
        await WriteAsync(Config(engine, upstream.Address, null), file);
        await faults.Proxy.Logs.WaitForAsync(Prompt, "Faults: route test: toxic a removed: no longer in the configuration file");
        await faults.Proxy.Logs.WaitForAsync(Prompt, "Faults: route test: toxic b removed: no longer in the configuration file");
        double none = await open.MedianRoundTripMsAsync(5);
        Assert.True(none < baseline + 30, $"round trip {none:0.0} ms after the toxics were removed");
        Assert.Empty(await ToxicsAsync(faults));

        // Nothing was dropped or moved: the same connections, the route's listener where it was.
        Assert.Equal(2, faults.Proxy.CountOf("test"));
        Assert.Equal(1, faults.Proxy.CountOf("plain"));
        await fresh.MedianRoundTripMsAsync(1);
        Assert.DoesNotContain(faults.Proxy.Logs.Messages, m => m.Contains("its listeners moved", StringComparison.Ordinal));
    }

    [Fact]
    [System.Runtime.Versioning.SupportedOSPlatform("linux")]
    public async Task A_reload_that_gives_a_route_its_first_toxic_reaches_its_connections_open_on_the_relay_and_no_other_routes()
    {
        Assert.SkipUnless(BindProxy.Configuration.EngineSettings.RelayRuns, "the relay engine runs on Linux only");
        await using var upstream = TestServer.Echo();
        var file = await WriteAsync(Config("relay", upstream.Address, null));
        await using var faults = await FaultProxy.StartFromFileAsync(file);
        using var open = await SocketExtensions.ConnectAsync(faults.Proxy.Endpoint("test"));
        using var plain = await SocketExtensions.ConnectAsync(faults.Proxy.Endpoint("plain"));
        double baseline = await open.MedianRoundTripMsAsync(5);
        await plain.MedianRoundTripMsAsync(1);
        Assert.All(faults.Proxy.Connections.Snapshot(), c => Assert.IsType<BindProxy.Transport.Linux.TcpRelay>(c.Legs));

        await WriteAsync(Config("relay", upstream.Address, """[{ "name": "a", "type": "latency", "attributes": { "latency": 100 } }]"""), file);
        await faults.Proxy.Logs.WaitForAsync(Prompt, "toxic a added from the configuration file");
        double after = await open.MedianRoundTripMsAsync(5);
        output.WriteLine($"round trip {baseline:0.0} ms on the relay, {after:0.0} ms after a reload added latency 100");
        Assert.InRange(after - baseline, 85, 115);

        // The route without toxics keeps its relay.
        Assert.IsType<BindProxy.Transport.Linux.TcpRelay>(faults.Proxy.Connections.Snapshot().Single(c => c.Route == "plain").Legs);
        Assert.IsType<BindProxy.Transport.PipeLegs>(faults.Proxy.Connections.Snapshot().Single(c => c.Route == "test").Legs);
    }

    [Fact]
    public async Task A_file_toxic_and_an_API_toxic_live_side_by_side_across_reloads()
    {
        await using var upstream = TestServer.Echo();
        var file = await WriteAsync(Config("pipes", upstream.Address, """[{ "name": "from_file", "type": "latency", "attributes": { "latency": 20 } }]"""));
        await using var faults = await FaultProxy.StartFromFileAsync(file);
        await faults.Proxy.Logs.WaitForAsync(Prompt, "toxic from_file added from the configuration file");
        await faults.AddToxicAsync("""{"name":"from_api","type":"latency","stream":"upstream","attributes":{"latency":30}}""");

        // A reload that changes the file's toxic leaves the API's as it is.
        await WriteAsync(Config("pipes", upstream.Address, """[{ "name": "from_file", "type": "latency", "attributes": { "latency": 40 } }]"""), file);
        await faults.Proxy.Logs.WaitForAsync(Prompt, "toxic from_file changed from the configuration file");
        var toxics = await ToxicsAsync(faults);
        Assert.Equal(["from_file", "from_api"], toxics.Keys);
        Assert.Equal(("file", 40), (toxics["from_file"].Origin, toxics["from_file"].Toxic.GetProperty("attributes").GetProperty("latency").GetInt32()));
        Assert.Equal(("api", 30), (toxics["from_api"].Origin, toxics["from_api"].Toxic.GetProperty("attributes").GetProperty("latency").GetInt32()));

        // `bindproxy fault list` says where each came from.
        var (exit, listed, err) = await BindProxyCli.RunAsync(BindProxyCli.TempDir(), "fault", "list", "--api", faults.Api.ToString());
        Assert.True(exit == 0, err);
        Assert.Contains("from_file: latency downstream toxicity 1  latency=40 jitter=0  (from the configuration file)", listed, StringComparison.Ordinal);
        Assert.Contains("from_api: latency upstream toxicity 1  latency=30 jitter=0\n", listed.ReplaceLineEndings("\n"), StringComparison.Ordinal);

        // The file naming the API's toxic takes it over; dropping its own removes only its own.
        await WriteAsync(Config("pipes", upstream.Address, """[{ "name": "from_api", "type": "latency", "stream": "upstream", "attributes": { "latency": 60 } }]"""), file);
        await faults.Proxy.Logs.WaitForAsync(Prompt, "toxic from_api of the configuration file replaces the one of that name added through the fault API");
        await faults.Proxy.Logs.WaitForAsync(Prompt, "toxic from_file removed: no longer in the configuration file");
        toxics = await ToxicsAsync(faults);
        Assert.Equal(["from_api"], toxics.Keys);
        Assert.Equal(("file", 60), (toxics["from_api"].Origin, toxics["from_api"].Toxic.GetProperty("attributes").GetProperty("latency").GetInt32()));

        // An API edit of a file toxic lasts until the file's Faults of that route change; an unrelated edit keeps it.
        var (status, _) = await faults.SendAsync(HttpMethod.Post, "proxies/test/toxics/from_api", """{"attributes":{"latency":70}}""");
        Assert.Equal(HttpStatusCode.OK, status);
        await faults.AddToxicAsync("""{"name":"api_again","type":"latency","attributes":{"latency":1}}""");
        await WriteAsync(Config("pipes", upstream.Address, """[{ "name": "from_api", "type": "latency", "stream": "upstream", "attributes": { "latency": 60 } }]""")
            .Replace("\"plain\": { ", "\"plain\": { \"IdleTimeout\": \"00:10:00\", ", StringComparison.Ordinal), file);
        await faults.Proxy.Logs.WaitForAsync(Prompt, "Reload: route plain changed: IdleTimeout");
        toxics = await ToxicsAsync(faults);
        Assert.Equal(70, toxics["from_api"].Toxic.GetProperty("attributes").GetProperty("latency").GetInt32());
        await WriteAsync(Config("pipes", upstream.Address, null), file);
        await faults.Proxy.Logs.WaitForAsync(Prompt, "toxic from_api removed: no longer in the configuration file");
        toxics = await ToxicsAsync(faults);
        Assert.Equal(["api_again"], toxics.Keys);
        Assert.Equal("api", toxics["api_again"].Origin);
    }

    [Fact]
    public async Task A_Kafka_routes_Faults_apply_to_its_broker_listeners_which_stay_addressable_in_the_API()
    {
        MockClusterTests.SkipUnlessNativeLibrary();
        using var cluster = MockCluster.Create(3);
        cluster.CreateTopic("scenario", 3, 1);
        string Config(int latency) => $$"""
            {
              "BindProxy": { "Routes": { "{{KafkaRoute.Name}}": { "Listen": "127.0.0.1:0", "Upstream": "{{cluster.BrokerAddresses[0]}}", "Source": "{{KafkaRoute.Source}}", "Protocol": "Kafka",
                "Faults": [ { "name": "slow_metadata", "type": "kafka_latency", "attributes": { "api": "Metadata", "latency": {{latency}} } } ] } } },
              "Faults": { "Listen": "127.0.0.1:0" }
            }
            """;
        var file = await WriteAsync(Config(300));
        await using var faults = await FaultProxy.StartFromFileAsync(file);
        var bootstrap = faults.Proxy.Endpoint(KafkaRoute.Name).ToString();
        using var admin = new AdminClientBuilder(new AdminClientConfig { BootstrapServers = bootstrap }).Build();
        Assert.Equal(3, admin.GetMetadata("scenario", TimeSpan.FromSeconds(20)).Brokers.Count);

        // Every broker listener carries the route's toxic from the file, under its own proxy name.
        var (_, proxies) = await faults.SendAsync(HttpMethod.Get, "proxies");
        var brokers = proxies.EnumerateObject().Select(p => p.Name).Where(n => n.StartsWith($"{KafkaRoute.Name}/broker-", StringComparison.Ordinal)).ToList();
        Assert.Equal(3, brokers.Count);
        foreach (var name in brokers.Prepend(KafkaRoute.Name))
        {
            var toxic = Assert.Single(proxies.GetProperty(name).GetProperty("toxics").EnumerateArray());
            Assert.Equal(("slow_metadata", "file"), (toxic.GetProperty("name").GetString(), toxic.GetProperty("origin").GetString()));
        }

        // It has its effect on whichever broker answers.
        long start = Stopwatch.GetTimestamp();
        admin.GetMetadata("scenario", TimeSpan.FromSeconds(20));
        double took = Stopwatch.GetElapsedTime(start).TotalMilliseconds;
        output.WriteLine($"Metadata through a broker listener with kafka_latency 300 from the file: {took:0} ms");
        Assert.True(took >= 280, $"Metadata answered in {took:0} ms");

        // A reload reaches every member; a broker's own proxy still takes API toxics beside it.
        await faults.AddToxicAsync("""{"name":"extra","type":"kafka_drop","attributes":{"api":"DescribeGroups"}}""", brokers[0]);
        await WriteAsync(Config(10), file);
        foreach (var name in brokers)
        {
            await faults.Proxy.Logs.WaitForAsync(Prompt, $"Faults: route {name}: toxic slow_metadata changed from the configuration file");
        }

        var (_, toxics) = await faults.SendAsync(HttpMethod.Get, $"proxies/{brokers[0]}/toxics");
        Assert.Equal(["slow_metadata:file", "extra:api"], toxics.EnumerateArray().Select(t => $"{t.GetProperty("name").GetString()}:{t.GetProperty("origin").GetString()}"));
    }

    [Fact]
    public async Task A_count_in_a_Kafka_routes_Faults_is_shared_by_the_route_and_its_broker_listeners()
    {
        MockClusterTests.SkipUnlessNativeLibrary();
        using var cluster = MockCluster.Create(3);
        var file = await WriteAsync($$"""
            {
              "BindProxy": { "Routes": { "{{KafkaRoute.Name}}": { "Listen": "127.0.0.1:0", "Upstream": "{{cluster.BrokerAddresses[0]}}", "Source": "{{KafkaRoute.Source}}", "Protocol": "Kafka",
                "Faults": [ { "name": "three", "type": "kafka_error", "attributes": { "api": "FindCoordinator", "error": "COORDINATOR_NOT_AVAILABLE", "count": 3 } } ] } } },
              "Faults": { "Listen": "127.0.0.1:0" }
            }
            """);
        await using var faults = await FaultProxy.StartFromFileAsync(file);
        using (var admin = new AdminClientBuilder(new AdminClientConfig { BootstrapServers = faults.Proxy.Endpoint(KafkaRoute.Name).ToString() }).Build())
        {
            Assert.Equal(3, admin.GetMetadata(TimeSpan.FromSeconds(20)).Brokers.Count);
        }

        // One FindCoordinator on each listener in turn (the bootstrap and three brokers), six in all:
        // "the next 3 matching requests" of the route fail, wherever they arrive.
        var (_, proxies) = await faults.SendAsync(HttpMethod.Get, "proxies");
        var listeners = proxies.EnumerateObject().Select(p => IPEndPoint.Parse(p.Value.GetProperty("listen").GetString()!)).ToList();
        Assert.Equal(4, listeners.Count);
        var codes = new List<short>();
        for (int i = 0; i < 6; i++)
        {
            codes.Add(await FindCoordinatorErrorAsync(listeners[i % listeners.Count], i));
        }

        output.WriteLine($"FindCoordinator error codes, listener by listener: {string.Join(", ", codes)}");
        Assert.Equal([15, 15, 15, 0, 0, 0], codes);

        static async Task<short> FindCoordinatorErrorAsync(IPEndPoint listener, int correlationId)
        {
            const short Version = 2;
            var writer = new BindProxy.Kafka.Protocol.KafkaWriter();
            int at = writer.ReserveInt32();
            writer.WriteInt16(BindProxy.Kafka.Protocol.KafkaApiKeys.FindCoordinator);
            writer.WriteInt16(Version);
            writer.WriteInt32(correlationId);
            writer.WriteString("counted", compact: false, nullable: true);
            new BindProxy.Kafka.Protocol.Messages.FindCoordinatorRequestData { Key = "g", KeyType = 0 }.Write(writer, Version);
            writer.PatchInt32(at, writer.Length - 4);

            using var client = await SocketExtensions.ConnectAsync(listener);
            await client.SendAsync(writer.ToArray());
            var size = await client.ReadExactlyAsync(4);
            var frame = new byte[4 + System.Buffers.Binary.BinaryPrimitives.ReadInt32BigEndian(size)];
            size.CopyTo(frame, 0);
            (await client.ReadExactlyAsync(frame.Length - 4)).CopyTo(frame, 4);
            var response = new BindProxy.Kafka.Protocol.Messages.FindCoordinatorResponseData();
            var reader = new BindProxy.Kafka.Protocol.KafkaReader(new System.Buffers.ReadOnlySequence<byte>(frame));
            Assert.True(BindProxy.Kafka.Protocol.KafkaResponseHeader.TrySkip(ref reader, BindProxy.Kafka.Protocol.KafkaApiKeys.FindCoordinator, Version) && response.TryRead(ref reader, Version));
            return response.ErrorCode;
        }
    }
}
