using System.Collections.Concurrent;
using Microsoft.Extensions.Logging;

namespace BindProxy.Tests.Infrastructure;

/// <summary>Keeps every log line of a test host, for assertions on what the proxy said.</summary>
public sealed class LogCollector : ILoggerProvider
{
    private readonly ConcurrentQueue<(LogLevel Level, int EventId, string Message)> _entries = new();

    public IReadOnlyList<(LogLevel Level, int EventId, string Message)> Entries => [.. _entries];

    public IEnumerable<string> Messages => _entries.Select(e => e.Message);

    public ILogger CreateLogger(string categoryName) => new Logger(this);

    public void Dispose()
    {
    }

    /// <summary>Waits until a line containing every one of <paramref name="fragments"/> was logged.</summary>
    public async Task<string> WaitForAsync(TimeSpan timeout, params string[] fragments)
    {
        string? hit = null;
        await Poll.UntilAsync(
            () => (hit = Messages.FirstOrDefault(m => fragments.All(f => m.Contains(f, StringComparison.Ordinal)))) is not null,
            () => $"a log line with [{string.Join("], [", fragments)}]; logged so far:\n{string.Join("\n", Messages)}",
            timeout);
        return hit!;
    }

    private sealed class Logger(LogCollector owner) : ILogger
    {
        public IDisposable? BeginScope<TState>(TState state) where TState : notnull => null;

        public bool IsEnabled(LogLevel logLevel) => logLevel >= LogLevel.Debug;

        public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter) =>
            owner._entries.Enqueue((logLevel, eventId.Id, exception is null ? formatter(state, exception) : $"{formatter(state, exception)}: {exception}"));
    }
}
