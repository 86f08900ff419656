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
internal sealed partial class ProxyLifetime(IHostApplicationLifetime lifetime, DrainCoordinator drains, ILogger<ProxyLifetime> logger)
    : IHostLifetime, IDisposable
{
    private readonly List<PosixSignalRegistration> _registrations = [];
    private int _signals;

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
        switch (Interlocked.Increment(ref _signals))
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
    }
}
