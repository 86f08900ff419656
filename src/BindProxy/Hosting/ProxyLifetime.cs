using System.Runtime.InteropServices;
using BindProxy.Forwarding;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace BindProxy.Hosting;

/// <summary>
/// How the proxy process stops: the first SIGINT (Ctrl-C), SIGTERM or SIGQUIT stops the host,
/// whose drain says at once what it waits for (<see cref="ShutdownDrain"/>); a second one resets
/// whatever is still open, so the process exits promptly; a third is left to the runtime, which
/// ends the process there and then. Replaces the host's console lifetime, which ignores a
/// second Ctrl-C.
/// </summary>
/// <remarks>
/// A SIGTERM within <see cref="SameRequestWindow"/> of the one before is the same request, not a
/// second one: a SIGTERM to a process group (<c>timeout</c>, <c>kill -TERM -PGID</c>, a CI
/// runner) reaches a proxy started by <c>dotnet run</c> twice, from the group and passed on by
/// <c>dotnet run</c>, milliseconds apart. No terminal sends SIGTERM, so no person's second
/// request is lost; Ctrl-C (SIGINT) pressed twice, however fast, still stops now.
/// </remarks>
internal sealed partial class ProxyLifetime(IHostApplicationLifetime lifetime, DrainCoordinator drains, ILogger<ProxyLifetime> logger)
    : IHostLifetime, IDisposable
{
    /// <summary>How soon a repeated SIGTERM counts as the same request.</summary>
    public static readonly TimeSpan SameRequestWindow = TimeSpan.FromSeconds(1);

    private readonly List<PosixSignalRegistration> _registrations = [];
    private readonly Lock _lock = new();
    private int _signals;
    private PosixSignal _lastSignal;
    private long _lastSignalTicks;

    public Task WaitForStartAsync(CancellationToken cancellationToken)
    {
        foreach (var signal in new[] { PosixSignal.SIGINT, PosixSignal.SIGTERM, PosixSignal.SIGQUIT })
        {
            _registrations.Add(PosixSignalRegistration.Create(signal, OnSignal));
        }

        return Task.CompletedTask;
    }

    public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    private void OnSignal(PosixSignalContext context)
    {
        int count;
        lock (_lock)
        {
            long now = Environment.TickCount64;
            long since = now - _lastSignalTicks;
            if (_signals > 0 && context.Signal == PosixSignal.SIGTERM && _lastSignal == PosixSignal.SIGTERM && since < (long)SameRequestWindow.TotalMilliseconds)
            {
                context.Cancel = true;
                Log.SameRequest(logger, since, SameRequestWindow.TotalSeconds);
                return;
            }

            count = ++_signals;
            _lastSignal = context.Signal;
            _lastSignalTicks = now;
        }

        switch (count)
        {
            case 1:
                context.Cancel = true;
                lifetime.StopApplication();
                break;
            case 2:
                context.Cancel = true;
                Log.StoppingNow(logger, context.Signal);
                drains.StopNow();
                break;
            default:
                // Still running after that: the runtime's default handling ends the process.
                break;
        }
    }

    public void Dispose()
    {
        foreach (var registration in _registrations)
        {
            registration.Dispose();
        }
    }

    private static partial class Log
    {
        [LoggerMessage(732, LogLevel.Warning, "Shutdown: {Signal} again: stopping now")]
        public static partial void StoppingNow(ILogger logger, PosixSignal signal);

        [LoggerMessage(733, LogLevel.Information, "Shutdown: SIGTERM again {Milliseconds} ms later, taken as the same request (a SIGTERM to the process group reaches a proxy under dotnet run twice); one more after {Window} s stops now")]
        public static partial void SameRequest(ILogger logger, long milliseconds, double window);
    }
}
