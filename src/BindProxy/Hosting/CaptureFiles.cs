using BindProxy.Capture;
using BindProxy.Configuration;
using BindProxy.Forwarding;

namespace BindProxy.Hosting;

/// <summary>
/// The <c>Capture</c> section at work: one capture of the connections its selectors pick, written
/// to rolling files by the same writer as <c>/api/capture</c> (the same bounded queue, the same
/// drop counting: forwarding never waits for it). A reload that turns it on or off, or changes
/// its selectors, directory or bounds, stops the running capture (its last file closed whole) and
/// starts the new one.
/// </summary>
internal sealed partial class CaptureFiles(CaptureHub hub, RouteTable routes, ILogger<CaptureFiles> logger) : IHostedService, IDisposable
{
    private readonly SemaphoreSlim _gate = new(1, 1);
    private Running? _running;

    /// <summary>The capture writing files now; null when off.</summary>
    public CaptureSession? Session => _running?.Session;

    public Task StartAsync(CancellationToken cancellationToken) => ApplyAsync(routes.Current.Capture);

    public Task StopAsync(CancellationToken cancellationToken) => ApplyAsync(null);

    public void Dispose() => _gate.Dispose();

    /// <summary>Runs the capture <paramref name="model"/> describes (none: null), unless it runs already.</summary>
    public async Task ApplyAsync(CaptureModel? model)
    {
        await _gate.WaitAsync().ConfigureAwait(false);
        try
        {
            if (model?.Describe() == _running?.Model.Describe())
            {
                return;
            }

            if (_running is { } old)
            {
                await old.Stop.CancelAsync().ConfigureAwait(false);
                await old.Task.ConfigureAwait(false);
                old.Stop.Dispose();
                _running = null;
                Log.Stopped(logger, old.Model.Directory, old.Session.Packets, old.Session.Dropped);
            }

            if (model is null)
            {
                return;
            }

            var legs = model.Legs switch
            {
                "client" => CaptureLegs.Client,
                "upstream" => CaptureLegs.Upstream,
                _ => CaptureLegs.Both,
            };
            var selector = new CaptureSelector(model.Route, model.Client, model.Source, model.Pid, model.Process, Connection: null, legs);
            CaptureFileSet files;
            try
            {
                files = new CaptureFileSet(model.Directory, model.RotateBytes, model.KeepFiles);
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                Log.Failed(logger, model.Directory, e.Message);
                return;
            }

            var session = hub.Start(selector, new CaptureLimits());
            var stop = new CancellationTokenSource();
            _running = new Running(model, session, stop, RunAsync(session, files, model, stop.Token));
            Log.Started(logger, model.Directory, selector.Describe(), model.RotateBytes / (1024.0 * 1024.0), model.KeepFiles);
        }
        finally
        {
            _gate.Release();
        }
    }

    private async Task RunAsync(CaptureSession session, CaptureFileSet files, CaptureModel model, CancellationToken stop)
    {
        // Off the caller's thread: the capture runs until the next reload or the proxy stops.
        await Task.Yield();
        try
        {
            await hub.RunAsync(session, files, stop).ConfigureAwait(false);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            Log.Failed(logger, model.Directory, e.Message);
            return;
        }

        if (!stop.IsCancellationRequested)
        {
            Log.Failed(logger, model.Directory, $"{files.Current} could not be written");
        }
    }

    private sealed record Running(CaptureModel Model, CaptureSession Session, CancellationTokenSource Stop, Task Task);

    private static partial class Log
    {
        [LoggerMessage(1300, LogLevel.Information, "Capture files: writing to {Directory} ({Selector}), a new file every {Megabytes} MB, {Keep} kept")]
        public static partial void Started(ILogger logger, string directory, string selector, double megabytes, int keep);

        [LoggerMessage(1301, LogLevel.Information, "Capture files: stopped writing to {Directory}; {Packets} packets written, {Dropped} dropped")]
        public static partial void Stopped(ILogger logger, string directory, long packets, long dropped);

        [LoggerMessage(1302, LogLevel.Error, "Capture files: stopped writing to {Directory}: {Reason}; fix it and save the configuration again to restart them")]
        public static partial void Failed(ILogger logger, string directory, string reason);
    }
}
