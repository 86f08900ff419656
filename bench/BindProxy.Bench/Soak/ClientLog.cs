using System.Globalization;
using Confluent.Kafka;

namespace BindProxy.Bench.Soak;

/// <summary>
/// The Kafka clients' own log lines (librdkafka), kept in a file next to the results instead of
/// on stderr, with a bound on how many are written. Warnings and errors are counted for the report.
/// </summary>
internal sealed class ClientLog(string path) : IDisposable
{
    private const int MaxLines = 20_000;

    private readonly Lock _lock = new();
    private readonly StreamWriter _writer = new(path) { AutoFlush = true };
    private int _lines;
    private int _warnings;

    public string Path => path;

    /// <summary>Lines at warning level or worse, written or not.</summary>
    public int Warnings => Volatile.Read(ref _warnings);

    public void Write(string client, LogMessage message)
    {
        lock (_lock)
        {
            if (message.Level <= SyslogLevel.Warning)
            {
                _warnings++;
            }

            if (_lines == MaxLines)
            {
                _writer.WriteLine($"(more lines left out after {MaxLines})");
            }

            if (_lines++ < MaxLines)
            {
                _writer.WriteLine(string.Create(CultureInfo.InvariantCulture,
                    $"{DateTime.UtcNow:HH:mm:ss.fff} {client} {message.Level} {message.Facility} {message.Message}"));
            }
        }
    }

    public void Dispose()
    {
        lock (_lock)
        {
            _writer.Dispose();
        }
    }
}
