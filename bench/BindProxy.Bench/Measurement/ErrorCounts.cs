using System.Collections.Concurrent;
using System.Net.Sockets;

namespace BindProxy.Bench.Measurement;

/// <summary>Failure counts keyed by a readable reason such as <c>ConnectionRefused(errno 111)</c>.</summary>
internal sealed class ErrorCounts
{
    private readonly ConcurrentDictionary<string, int> _counts = new(StringComparer.Ordinal);

    public int Total => _counts.Values.Sum();

    public void Add(string reason) => _counts.AddOrUpdate(reason, 1, static (_, n) => n + 1);

    public void Add(Exception exception) => Add(Describe(exception));

    public SortedDictionary<string, int> Snapshot() => new(_counts, StringComparer.Ordinal);

    public static string Describe(Exception exception) => exception switch
    {
        SocketException s => $"{s.SocketErrorCode}(errno {s.NativeErrorCode})",
        OperationCanceledException => "Timeout",
        IOException { InnerException: SocketException s } => $"{s.SocketErrorCode}(errno {s.NativeErrorCode})",
        _ => exception.GetType().Name,
    };
}
