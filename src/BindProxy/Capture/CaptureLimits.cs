namespace BindProxy.Capture;

/// <summary>When a capture stops by itself; null: no limit of that kind. <paramref name="QueueBytes"/> bounds what waits to be written.</summary>
internal sealed record CaptureLimits(TimeSpan? Duration = null, long? Packets = null, long? Bytes = null, int QueueBytes = CaptureLimits.DefaultQueueBytes)
{
    public const int DefaultQueueBytes = 8 * 1024 * 1024;
}
