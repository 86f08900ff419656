using System.Diagnostics;

namespace BindProxy.Outbound;

/// <summary>
/// The connect timeout of one upstream connect, as a token made only when something has to wait
/// for it: a loopback connect that completes at once never arms a timer.
/// </summary>
internal sealed class ConnectDeadline(TimeSpan timeout, CancellationToken cancellationToken) : IDisposable
{
    private readonly long _started = Stopwatch.GetTimestamp();
    private CancellationTokenSource? _source;
    private volatile bool _abandoned;

    /// <summary>True once an attempt gave the connect up because the client left (<see cref="Abandon"/>).</summary>
    public bool IsAbandoned => _abandoned;

    /// <summary>
    /// Marks the connect as given up because the client left: the attempt that calls this then
    /// throws <see cref="OperationCanceledException"/>, and no further source or destination is tried.
    /// </summary>
    public void Abandon() => _abandoned = true;

    /// <summary>Fires at the timeout (counted from this deadline's creation) or when the caller's token does.</summary>
    public CancellationToken Token
    {
        get
        {
            if (_source is null)
            {
                _source = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
                var left = timeout - Stopwatch.GetElapsedTime(_started);
                _source.CancelAfter(left > TimeSpan.Zero ? left : TimeSpan.Zero);
            }

            return _source.Token;
        }
    }

    public void Dispose() => _source?.Dispose();
}
