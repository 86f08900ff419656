using System.Globalization;
using Confluent.Kafka;

namespace BindProxy.Demo;

/// <summary>
/// An unmodified Confluent.Kafka producer and consumer as a process of their own: produces N
/// keyed messages to a topic, consumes the topic from the beginning until all N came back (or 60 s
/// passed), prints <c>produced N consumed M</c>, and exits 0 only when every message came back.
/// </summary>
internal static class KafkaClientTool
{
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(60);

    public static async Task<int> RunAsync(string bootstrap, string topic, int messages, string clientId, TextWriter output, CancellationToken cancellationToken)
    {
        if (MockCluster.EnsureNativeLibrary() is { } error)
        {
            await Console.Error.WriteLineAsync($"client: {error}").ConfigureAwait(false);
            return DemoRunner.CannotStart;
        }

        var run = Guid.NewGuid().ToString("n")[..8];
        using var producer = new ProducerBuilder<string, string>(new ProducerConfig
        {
            BootstrapServers = bootstrap,
            ClientId = clientId,
            EnableIdempotence = true,
            Acks = Acks.All,
        }).SetLogHandler((_, _) => { }).Build();
        int produced = 0;
        for (int i = 0; i < messages; i++)
        {
            using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
            timeout.CancelAfter(Timeout);
            await producer.ProduceAsync(topic, new Message<string, string> { Key = $"{run}-{i}", Value = $"message {i} of run {run}" }, timeout.Token).ConfigureAwait(false);
            produced++;
        }

        using var consumer = new ConsumerBuilder<string, string>(new ConsumerConfig
        {
            BootstrapServers = bootstrap,
            ClientId = clientId,
            GroupId = $"{clientId}-{run}",
            AutoOffsetReset = AutoOffsetReset.Earliest,
        }).SetLogHandler((_, _) => { }).Build();
        consumer.Subscribe(topic);
        var seen = new HashSet<string>(StringComparer.Ordinal);
        var deadline = DateTime.UtcNow + Timeout;
        while (seen.Count < produced && DateTime.UtcNow < deadline && !cancellationToken.IsCancellationRequested)
        {
            if (consumer.Consume(TimeSpan.FromMilliseconds(200)) is { Message.Key: { } key } && key.StartsWith(run, StringComparison.Ordinal))
            {
                seen.Add(key);
            }
        }

        consumer.Close();
        await output.WriteLineAsync($"produced {produced} consumed {seen.Count}").ConfigureAwait(false);
        return seen.Count == produced ? 0 : DemoRunner.CheckFailed;
    }

}
