namespace BindProxy.Forwarding;

/// <summary>
/// The one way connections are drained, for a removed route family and at shutdown alike. The
/// caller closes the listeners first; then whatever is still open is asked to finish (an HTTP
/// connection closes after its request), waited for through the close signals of the registries
/// that hold it, and reset when the drain timeout runs out — or at once after <see cref="StopNow"/>.
/// </summary>
internal sealed class DrainCoordinator(IEnumerable<IDrainSource> sources) : IDisposable
{
    /// <summary>After the resets, how long to wait for what was reset to be let go of (the relay loops close it).</summary>
    private static readonly TimeSpan AbortGrace = TimeSpan.FromSeconds(5);

    /// <summary>
    /// A round waits for everything open when it began. Later rounds catch connections that were
    /// still being set up when the drain began; their listeners are closed, so no others come.
    /// </summary>
    private const int MaxRounds = 64;

    private readonly IDrainSource[] _sources = [.. sources];
    private readonly CancellationTokenSource _stopNow = new();

    /// <summary>True once <see cref="StopNow"/> was called: what is left of every drain is being reset.</summary>
    public bool StoppingNow => _stopNow.IsCancellationRequested;

    /// <summary>Cuts every drain short, those running and those to come: what is open is reset now.</summary>
    public void StopNow()
    {
        try
        {
            _stopNow.Cancel();
        }
        catch (ObjectDisposedException)
        {
            // Stopped already.
        }
    }

    /// <summary>How many of <paramref name="which"/> are open now.</summary>
    public int Count(Func<IDrainable, bool> which) => Open(which).Count;

    /// <summary>
    /// Lets <paramref name="which"/> finish within <paramref name="timeout"/>, then resets what is
    /// left and waits (a few seconds at most) for it to close.
    /// </summary>
    public async Task<DrainResult> DrainAsync(Func<IDrainable, bool> which, TimeSpan timeout)
    {
        using var expired = CancellationTokenSource.CreateLinkedTokenSource(_stopNow.Token);
        expired.CancelAfter(timeout);
        int aborted = 0;
        for (int round = 0; round < MaxRounds; round++)
        {
            var open = Open(which);
            if (open.Count == 0)
            {
                return new DrainResult(aborted, 0);
            }

            if (!expired.IsCancellationRequested)
            {
                foreach (var item in open)
                {
                    item.RequestClose();
                }

                try
                {
                    await Task.WhenAll(open.Select(d => d.WhenClosed())).WaitAsync(expired.Token).ConfigureAwait(false);
                    continue;
                }
                catch (OperationCanceledException)
                {
                    open = Open(which);
                }
            }

            foreach (var item in open)
            {
                item.Abort();
            }

            aborted += open.Count;
            try
            {
                await Task.WhenAll(open.Select(d => d.WhenClosed())).WaitAsync(AbortGrace).ConfigureAwait(false);
            }
            catch (TimeoutException)
            {
                return new DrainResult(aborted, Open(which).Count);
            }
        }

        return new DrainResult(aborted, Open(which).Count);
    }

    private List<IDrainable> Open(Func<IDrainable, bool> which) => [.. _sources.SelectMany(s => s.Open()).Where(which)];

    public void Dispose() => _stopNow.Dispose();
}
