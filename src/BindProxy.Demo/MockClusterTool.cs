using System.Globalization;
using System.Net;
using System.Net.Sockets;

namespace BindProxy.Demo;

/// <summary>
/// librdkafka's mock cluster as a process of its own, for trying <c>bindproxy exec</c> (and for
/// tests that run clients in other processes): prints <c>bootstrap HOST:PORT,...</c> and runs
/// until Ctrl-C, SIGTERM or <c>quit</c>, whatever stdin is (a terminal, a pipe, /dev/null: started
/// in the background by a script, it keeps serving). Commands on stdin, one a line, answered on stdout:
/// <code>
/// add ID                      a new broker (it listens on a new port); "added ID"
/// leader TOPIC PARTITION ID   move a partition's leader; "leader TOPIC PARTITION ID"
/// move ID                     the broker advertises a new port of a relay in front of it; "moved ID 127.0.0.1:PORT"
/// advertise ID HOST PORT      the broker advertises HOST:PORT (a proxy in front of it); "advertised ID HOST:PORT"
/// quit                        stop
/// </code>
/// </summary>
internal static class MockClusterTool
{
    /// <summary>The relay of a moved broker connects to the broker from here, so its own leg is told apart in a capture.</summary>
    public const string RelaySource = "127.0.0.250";

    /// <param name="partitions">Partitions of <paramref name="topic"/>; null: one per broker.</param>
    public static async Task<int> RunAsync(int brokers, string? topic, int? partitions, TextReader input, TextWriter output, CancellationToken cancellationToken)
    {
        if (MockCluster.EnsureNativeLibrary() is { } error)
        {
            await Console.Error.WriteLineAsync($"cannot start the mock Kafka cluster: {error}").ConfigureAwait(false);
            return DemoRunner.CannotStart;
        }

        using var cluster = MockCluster.Create(brokers);
        cluster.SetGroupInitialRebalanceDelay(0);
        if (topic is not null)
        {
            int count = partitions ?? brokers;
            cluster.CreateTopic(topic, count, Math.Min(3, brokers));
            for (int partition = 0; partition < count; partition++)
            {
                cluster.SetLeader(topic, partition, partition % brokers + 1);
            }
        }

        await output.WriteLineAsync($"bootstrap {cluster.BootstrapServers}").ConfigureAwait(false);
        await output.FlushAsync(cancellationToken).ConfigureAwait(false);
        await Console.Error.WriteLineAsync("mock cluster running until Ctrl-C or SIGTERM; commands on stdin: add ID, leader TOPIC PARTITION ID, move ID, quit").ConfigureAwait(false);
        var relays = new List<Relay>();
        try
        {
            bool quit = false;
            while (!quit && await input.ReadLineAsync(cancellationToken).ConfigureAwait(false) is { } line)
            {
                var words = line.Split(' ', StringSplitOptions.RemoveEmptyEntries);
                string answer;
                try
                {
                    answer = words switch
                    {
                        ["add", var id] => Add(cluster, int.Parse(id, CultureInfo.InvariantCulture)),
                        ["leader", var t, var p, var id] => Leader(cluster, t, int.Parse(p, CultureInfo.InvariantCulture), int.Parse(id, CultureInfo.InvariantCulture)),
                        ["move", var id] => Move(cluster, int.Parse(id, CultureInfo.InvariantCulture), relays, cancellationToken),
                        ["advertise", var id, var host, var port] => Advertise(cluster, int.Parse(id, CultureInfo.InvariantCulture), host, int.Parse(port, CultureInfo.InvariantCulture)),
                        ["quit"] => "",
                        [] => "?",
                        _ => $"error: unknown command '{line}'",
                    };
                }
                catch (Exception e) when (e is InvalidOperationException or FormatException or SocketException)
                {
                    answer = $"error: {e.Message}";
                }

                if (answer.Length == 0)
                {
                    quit = true;
                    break;
                }

                await output.WriteLineAsync(answer).ConfigureAwait(false);
                await output.FlushAsync(cancellationToken).ConfigureAwait(false);
            }

            // The end of stdin is no request to stop: a script's background job reads /dev/null.
            if (!quit)
            {
                await Task.Delay(Timeout.Infinite, cancellationToken).ConfigureAwait(false);
            }
        }
        catch (OperationCanceledException)
        {
        }
        finally
        {
            foreach (var relay in relays)
            {
                relay.Dispose();
            }
        }

        return 0;
    }

    private static string Add(MockCluster cluster, int id)
    {
        cluster.AddBroker(id);
        return $"added {id}";
    }

    private static string Leader(MockCluster cluster, string topic, int partition, int id)
    {
        cluster.SetLeader(topic, partition, id);
        return $"leader {topic} {partition} {id}";
    }

    /// <summary>The broker advertises <paramref name="host"/>:<paramref name="port"/>, where something else (a proxy) must reach it.</summary>
    private static string Advertise(MockCluster cluster, int id, string host, int port)
    {
        cluster.SetHostPort(id, host, port);
        return $"advertised {id} {host}:{port}";
    }

    private static string Move(MockCluster cluster, int id, List<Relay> relays, CancellationToken cancellationToken)
    {
        var broker = IPEndPoint.Parse(cluster.BrokerAddresses[id - 1]);
        var relay = new Relay(broker, cancellationToken);
        relays.Add(relay);
        cluster.SetHostPort(id, "127.0.0.1", relay.Port);
        return $"moved {id} 127.0.0.1:{relay.Port}";
    }

    /// <summary>A plain TCP relay on a new port of 127.0.0.1 to a broker: where a moved broker is reached.</summary>
    private sealed class Relay : IDisposable
    {
        private readonly Socket _listener = new(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        private readonly CancellationTokenSource _stop;

        public Relay(IPEndPoint broker, CancellationToken cancellationToken)
        {
            _stop = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
            _listener.Bind(new IPEndPoint(IPAddress.Loopback, 0));
            _listener.Listen();
            Port = ((IPEndPoint)_listener.LocalEndPoint!).Port;
            _ = AcceptAsync(broker, _stop.Token);
        }

        public int Port { get; }

        private async Task AcceptAsync(IPEndPoint broker, CancellationToken cancellationToken)
        {
            try
            {
                while (!cancellationToken.IsCancellationRequested)
                {
                    var client = await _listener.AcceptAsync(cancellationToken).ConfigureAwait(false);
                    _ = PipeAsync(client, broker, cancellationToken);
                }
            }
            catch (Exception e) when (e is OperationCanceledException or SocketException or ObjectDisposedException)
            {
            }
        }

        private static async Task PipeAsync(Socket client, IPEndPoint broker, CancellationToken cancellationToken)
        {
            using var upstream = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
            using (client)
            {
                try
                {
                    upstream.Bind(new IPEndPoint(IPAddress.Parse(RelaySource), 0));
                    await upstream.ConnectAsync(broker, cancellationToken).ConfigureAwait(false);
                    using var a = new NetworkStream(client);
                    using var b = new NetworkStream(upstream);
                    await Task.WhenAny(a.CopyToAsync(b, cancellationToken), b.CopyToAsync(a, cancellationToken)).ConfigureAwait(false);
                }
                catch (Exception e) when (e is OperationCanceledException or SocketException or IOException)
                {
                }
            }
        }

        public void Dispose()
        {
            _stop.Cancel();
            _listener.Dispose();
            _stop.Dispose();
        }
    }
}
