using System.Globalization;
using System.Net;
using System.Net.NetworkInformation;
using BindProxy.Addressing;
using BindProxy.Configuration;
using BindProxy.Forwarding;
using BindProxy.Hosting;
using BindProxy.Kafka.Brokers;
using BindProxy.Transport;
using Confluent.Kafka;
using Microsoft.AspNetCore.Builder;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace BindProxy.Demo;

/// <summary>
/// A 3-broker Kafka cluster (librdkafka's mock cluster, in this process), BindProxy in Kafka mode
/// from 127.0.0.2 in front of it, and an unmodified Confluent.Kafka producer and consumer group
/// that only know the proxy's bootstrap address. Prints what the kernel's socket table shows
/// while they are connected and the capture command that isolates their traffic.
/// </summary>
internal static class DemoRunner
{
    public const string Source = "127.0.0.2";
    public const string RouteName = "kafka-demo";
    public const string Topic = "demo";
    public const int Brokers = 3;
    public const int Messages = 9;

    /// <summary>Exit codes: 0 all shown and checked; 1 a check failed; 2 the demo could not start.</summary>
    public const int Success = 0;
    public const int CheckFailed = 1;
    public const int CannotStart = 2;

    /// <summary>Upper bound for the run up to its checks: a hung step ends it with a non-zero exit instead of hanging a terminal or CI.</summary>
    public static readonly TimeSpan Deadline = TimeSpan.FromSeconds(90);

    /// <summary>With <c>--keep</c>: one message out and back this often, and a line saying so this often.</summary>
    private static readonly TimeSpan LivePeriod = TimeSpan.FromSeconds(1);
    private static readonly TimeSpan LiveReportPeriod = TimeSpan.FromSeconds(10);

    public static Task<int> RunAsync(TextWriter output, CancellationToken cancellationToken) => RunAsync(output, keep: false, cancellationToken);

    /// <param name="keep">After the checks, keep everything running with slow live traffic until <paramref name="cancellationToken"/> is cancelled (Ctrl-C).</param>
    public static async Task<int> RunAsync(TextWriter output, bool keep, CancellationToken cancellationToken)
    {
        var writer = TextWriter.Synchronized(output);
        using var deadline = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        deadline.CancelAfter(Deadline);
        var checks = deadline.Token;
        var loadError = MockCluster.EnsureNativeLibrary();
        if (loadError is not null)
        {
            await writer.WriteLineAsync($"cannot start the mock Kafka cluster: {loadError}").ConfigureAwait(false);
            return CannotStart;
        }

        using var cluster = MockCluster.Create(Brokers);
        cluster.CreateTopic(Topic, partitions: Brokers, replicationFactor: Brokers);
        for (int partition = 0; partition < Brokers; partition++)
        {
            cluster.SetLeader(Topic, partition, partition + 1);
        }

        // A real broker waits 3 s for more members before a new group's first assignment; one member here.
        cluster.SetGroupInitialRebalanceDelay(0);

        var validation = await new ConfigValidator(new SourceAddressProbe()).ValidateAsync(new ProxyConfig
        {
            Routes =
            [
                new RouteConfig
                {
                    Name = RouteName,
                    Listen = "127.0.0.1:0",
                    Upstream = cluster.BrokerAddresses[0],
                    Source = Source,
                    Protocol = "Kafka",
                },
            ],
        }, checks).ConfigureAwait(false);
        if (!validation.IsValid)
        {
            await writer.WriteLineAsync($"cannot start the proxy: {string.Join("; ", validation.Errors)}").ConfigureAwait(false);
            return CannotStart;
        }

        var app = ProxyHost.Build(validation.Model!, new ConfigurationBuilder().Build(), builder =>
            builder.Logging.ClearProviders()
                .AddProvider(new WriterLoggerProvider(writer))
                .SetMinimumLevel(LogLevel.Warning)
                .AddFilter("BindProxy.Kafka.Brokers", LogLevel.Information));
        await using (app.ConfigureAwait(false))
        {
            await app.StartAsync(checks).ConfigureAwait(false);
            try
            {
                return await ShowAsync(cluster, app, writer, keep ? cancellationToken : null, checks).ConfigureAwait(false);
            }
            finally
            {
                // The clients are gone by now, but librdkafka closes their sockets from its own
                // threads, which on a busy machine takes seconds: the drain waits for that (it ends
                // as soon as the last one closes) rather than reset them with a warning.
                using var stop = new CancellationTokenSource(TimeSpan.FromSeconds(20));
                await app.StopAsync(stop.Token).ConfigureAwait(false);
            }
        }
    }

    /// <param name="keepUntil">Set: after the checks, keep the clients busy until it is cancelled.</param>
    private static async Task<int> ShowAsync(MockCluster cluster, WebApplication app, TextWriter writer, CancellationToken? keepUntil, CancellationToken cancellationToken)
    {
        var bootstrap = app.Services.GetRequiredService<ListenerRegistry>().For(RouteName)[0];
        await writer.WriteLineAsync($"""
            Kafka cluster (librdkafka mock, {Brokers} brokers): {cluster.BootstrapServers}
            BindProxy route '{RouteName}': clients bootstrap from {bootstrap}; every broker connection leaves from {Source}
            Clients below are configured with bootstrap.servers={bootstrap} and nothing else.

            """).ConfigureAwait(false);

        using var producer = new ProducerBuilder<string, string>(new ProducerConfig
        {
            BootstrapServers = bootstrap.ToString(),
            ClientId = "demo-producer",
            EnableIdempotence = true,
            Acks = Acks.All,
        }).SetLogHandler((_, _) => { }).Build();

        for (int i = 0; i < Messages; i++)
        {
            var report = await producer.ProduceAsync(Topic, new Message<string, string> { Key = $"key-{i}", Value = $"message {i}" }, cancellationToken)
                .ConfigureAwait(false);
            await writer.WriteLineAsync($"produced '{report.Message.Value}' to partition {report.Partition.Value} at offset {report.Offset.Value}").ConfigureAwait(false);
        }

        using var consumer = new ConsumerBuilder<string, string>(new ConsumerConfig
        {
            BootstrapServers = bootstrap.ToString(),
            ClientId = "demo-consumer",
            GroupId = "demo-group",
            AutoOffsetReset = AutoOffsetReset.Earliest,
        }).SetLogHandler((_, _) => { }).Build();
        consumer.Subscribe(Topic);
        var consumed = new HashSet<string>(StringComparer.Ordinal);
        var consumeUntil = DateTime.UtcNow + TimeSpan.FromSeconds(30);
        while (consumed.Count < Messages && DateTime.UtcNow < consumeUntil && !cancellationToken.IsCancellationRequested)
        {
            if (consumer.Consume(TimeSpan.FromMilliseconds(200))?.Message is { } message && consumed.Add(message.Value))
            {
                await writer.WriteLineAsync($"consumed '{message.Value}' (group demo-group)").ConfigureAwait(false);
            }
        }

        // Both clients are still connected: this is the moment the table is interesting.
        var directory = app.Services.GetRequiredService<BrokerDirectories>().All[RouteName];
        var failures = await PrintConnectionsAsync(cluster, directory, app.Services.GetRequiredService<ConnectionRegistry>(), writer).ConfigureAwait(false);
        await PrintCaptureCommandsAsync(directory, writer).ConfigureAwait(false);

        if (consumed.Count != Messages)
        {
            failures.Add($"consumed {consumed.Count} of {Messages} messages");
        }

        foreach (var failure in failures)
        {
            await writer.WriteLineAsync($"CHECK FAILED: {failure}").ConfigureAwait(false);
        }

        await writer.WriteLineAsync(failures.Count == 0 ? "demo finished: all checks passed" : "demo finished with failed checks").ConfigureAwait(false);
        if (keepUntil is { } stop)
        {
            await KeepAsync(producer, consumer, writer, stop).ConfigureAwait(false);
        }

        consumer.Close();
        return failures.Count == 0 ? Success : CheckFailed;
    }

    /// <summary>
    /// <c>--keep</c>: one message produced and consumed back through the proxy every second until
    /// <paramref name="stop"/>, so a capture started from the printed commands has traffic to show.
    /// </summary>
    private static async Task KeepAsync(IProducer<string, string> producer, IConsumer<string, string> consumer, TextWriter writer, CancellationToken stop)
    {
        await writer.WriteLineAsync("""

            Kept running (--keep): the cluster, the proxy and both clients stay up, and a message goes out
            and comes back through the proxy every second, so the commands above show live traffic.
            Press Ctrl-C to stop.

            """).ConfigureAwait(false);

        long produced = 0;
        long consumed = 0;
        var nextReport = DateTime.UtcNow;
        while (!stop.IsCancellationRequested)
        {
            var turnEnds = DateTime.UtcNow + LivePeriod;
            try
            {
                await producer.ProduceAsync(Topic, new Message<string, string> { Key = $"live-{produced}", Value = $"live {produced}" }, stop).ConfigureAwait(false);
                produced++;
            }
            catch (OperationCanceledException)
            {
                break;
            }
            catch (KafkaException e)
            {
                await writer.WriteLineAsync($"live traffic stopped: the producer failed: {e.Error.Reason}").ConfigureAwait(false);
                break;
            }

            // Consume for the rest of the second (bounded: each wait is at most 200 ms).
            while (DateTime.UtcNow < turnEnds && !stop.IsCancellationRequested)
            {
                if (consumer.Consume(TimeSpan.FromMilliseconds(200))?.Message is { Value: { } value } && value.StartsWith("live ", StringComparison.Ordinal))
                {
                    consumed++;
                }
            }

            if (DateTime.UtcNow >= nextReport && consumed > 0)
            {
                await writer.WriteLineAsync($"live: {produced} message(s) produced and {consumed} consumed through the proxy so far (Ctrl-C to stop)").ConfigureAwait(false);
                nextReport = DateTime.UtcNow + LiveReportPeriod;
            }
        }

        await writer.WriteLineAsync($"stopped after {produced} live message(s) produced and {consumed} consumed").ConfigureAwait(false);
    }

    /// <summary>
    /// One row per proxied connection (from the proxy), each confirmed in the kernel's TCP table;
    /// then the kernel's view of every connection to a broker port. Returns what did not hold.
    /// </summary>
    private static async Task<List<string>> PrintConnectionsAsync(MockCluster cluster, BrokerDirectory directory, ConnectionRegistry registry, TextWriter writer)
    {
        var failures = new List<string>();

        // The proxy's view first, then the kernel's, so no row can be newer than the kernel table.
        var connections = registry.Snapshot().OrderBy(c => c.Id).ToList();
        var kernel = EstablishedConnections();
        var brokerPorts = cluster.BrokerAddresses.Select(PortOf).ToHashSet();
        var nodeByPort = directory.Brokers.ToDictionary(b => b.Port, b => b.NodeId);

        await writer.WriteLineAsync().ConfigureAwait(false);
        await writer.WriteLineAsync("Brokers as the clients see them:").ConfigureAwait(false);
        foreach (var broker in directory.Brokers)
        {
            await writer.WriteLineAsync($"  broker {broker.NodeId}: real {broker.Host}:{broker.Port}, told to clients as proxy port {broker.ProxyPort}").ConfigureAwait(false);
        }

        await writer.WriteLineAsync().ConfigureAwait(false);
        await writer.WriteLineAsync("Connection table (client → proxy listener | source → broker), checked against the kernel's TCP table:").ConfigureAwait(false);
        await writer.WriteLineAsync(string.Create(CultureInfo.InvariantCulture,
            $"  {"client",-21} {"proxy listener",-21} {"source",-21} {"broker",-21} {"node",-5} {"client.id",-15} kernel")).ConfigureAwait(false);
        foreach (var connection in connections)
        {
            var (source, upstream) = (connection.Source, connection.Upstream);
            bool inKernel = kernel.Any(k => k.LocalEndPoint.Equals(source) && k.RemoteEndPoint.Equals(upstream));
            if (!inKernel && connection.Legs.State != "open")
            {
                continue; // closing between the two reads: not a row to confirm
            }

            string node = nodeByPort.TryGetValue(upstream.Port, out var id) ? id.ToString(CultureInfo.InvariantCulture) : "?";
            await writer.WriteLineAsync(string.Create(CultureInfo.InvariantCulture,
                $"  {connection.Client,-21} {connection.Listener,-21} {source,-21} {upstream,-21} {node,-5} {connection.Kafka?.ClientId ?? "-",-15} {(inKernel ? "ESTABLISHED" : "missing")}"))
                .ConfigureAwait(false);
            if (!inKernel)
            {
                failures.Add($"{source} → {upstream} is not in the kernel's TCP table");
            }
        }

        // Brokers listen on loopback; other programs may use the same port numbers on other addresses.
        var brokerHosts = directory.Brokers.Select(b => b.Host).ToHashSet(StringComparer.OrdinalIgnoreCase);
        var toBrokers = kernel.Where(k => brokerPorts.Contains(k.RemoteEndPoint.Port) && IsBrokerHost(k.RemoteEndPoint.Address, brokerHosts)).ToList();
        var notFromSource = toBrokers.Where(k => !k.LocalEndPoint.Address.Equals(IPAddress.Parse(Source))).ToList();
        await writer.WriteLineAsync().ConfigureAwait(false);
        await writer.WriteLineAsync($"Kernel TCP table: {toBrokers.Count} connection(s) to broker ports, {toBrokers.Count - notFromSource.Count} from {Source}, {notFromSource.Count} from anywhere else.")
            .ConfigureAwait(false);
        foreach (var stray in notFromSource)
        {
            failures.Add($"{stray.LocalEndPoint} → {stray.RemoteEndPoint} reaches a broker without the proxy");
        }

        if (toBrokers.Count == 0)
        {
            failures.Add("no connection to any broker was found in the kernel's TCP table");
        }

        return failures;
    }

    private static async Task PrintCaptureCommandsAsync(BrokerDirectory directory, TextWriter writer)
    {
        var ports = directory.Brokers.Select(b => b.Port).Distinct().Order().ToList();
        var portFilter = string.Join(" or ", ports.Select(p => $"tcp port {p}"));
        var captureFilter = $"host {Source} and ({portFilter})";
        var displayFilter = $"ip.addr=={Source} && tcp.port in {{{string.Join(",", ports)}}}";
        await writer.WriteLineAsync($"""

            To see only these clients' broker traffic (the mock brokers' ports change every run; with a
            real cluster use its brokers' ports):
              tshark -i lo -f '{captureFilter}'
              tcpdump -i lo -n '{captureFilter}'
            Wireshark display filter: {displayFilter}

            """).ConfigureAwait(false);
    }

    private static List<TcpConnectionInformation> EstablishedConnections() =>
        [.. IPGlobalProperties.GetIPGlobalProperties().GetActiveTcpConnections().Where(c => c.State == TcpState.Established)];

    private static bool IsBrokerHost(IPAddress address, HashSet<string> hosts) =>
        hosts.Contains(address.ToString()) || (hosts.Contains("localhost") && IPAddress.IsLoopback(address));

    private static int PortOf(string hostPort) =>
        int.Parse(hostPort.AsSpan(hostPort.LastIndexOf(':') + 1), NumberStyles.None, CultureInfo.InvariantCulture);

    /// <summary>The proxy's own log lines, interleaved with the demo's output.</summary>
    private sealed class WriterLoggerProvider(TextWriter writer) : ILoggerProvider
    {
        public ILogger CreateLogger(string categoryName) => new WriterLogger(writer);

        public void Dispose()
        {
        }

        private sealed class WriterLogger(TextWriter writer) : ILogger
        {
            public IDisposable? BeginScope<TState>(TState state) where TState : notnull => null;

            public bool IsEnabled(LogLevel logLevel) => logLevel != LogLevel.None;

            public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter) =>
                writer.WriteLine($"  [proxy {logLevel.ToString().ToUpperInvariant()[..4]}] {formatter(state, exception)}");
        }
    }
}
