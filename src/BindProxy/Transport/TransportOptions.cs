namespace BindProxy.Transport;

/// <summary>Buffer sizes for the project's socket transport (inbound and outbound alike).</summary>
internal sealed record TransportOptions
{
    /// <summary>Bytes asked of the pool for each receive; larger than Kestrel's 4 KiB blocks for fewer syscalls per byte.</summary>
    public int ReceiveBufferSize { get; init; } = 64 * 1024;

    /// <summary>
    /// Received bytes one direction may hold before the receive loop stops reading from the socket;
    /// past it, TCP flow control pushes back on the sender. Bounds memory per connection.
    /// </summary>
    public int MaxBufferedBytes { get; init; } = 1024 * 1024;

    /// <summary>Listen backlog (the kernel caps it at net.core.somaxconn).</summary>
    public int ListenBacklog { get; init; } = 4096;

    private System.IO.Pipelines.PipeOptions? _pipeOptions;

    public TransportOptions()
    {
    }

    // `with` copies settings, never the pipe options made from the original's settings.
    private TransportOptions(TransportOptions original)
    {
        ReceiveBufferSize = original.ReceiveBufferSize;
        MaxBufferedBytes = original.MaxBufferedBytes;
        ListenBacklog = original.ListenBacklog;
    }

    /// <summary>The receive pipes' options, made once and shared by every socket with these settings.</summary>
    public System.IO.Pipelines.PipeOptions PipeOptions => _pipeOptions ??= new(
        pool: System.Buffers.MemoryPool<byte>.Shared,
        readerScheduler: System.IO.Pipelines.PipeScheduler.Inline,
        writerScheduler: System.IO.Pipelines.PipeScheduler.Inline,
        pauseWriterThreshold: MaxBufferedBytes,
        resumeWriterThreshold: MaxBufferedBytes / 2,
        minimumSegmentSize: ReceiveBufferSize,
        useSynchronizationContext: false);
}
