namespace BindProxy.Forwarding;

/// <summary>A connection's hold on its client's assignment; disposing it marks the connection gone.</summary>
internal sealed class AssignmentLease(Assignment assignment) : IDisposable
{
    private int _disposed;

    public Assignment Assignment { get; } = assignment;

    public void Dispose()
    {
        if (Interlocked.Exchange(ref _disposed, 1) == 0)
        {
            Assignment.Leave();
        }
    }
}
