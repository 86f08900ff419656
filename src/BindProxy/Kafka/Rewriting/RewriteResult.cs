using BindProxy.Kafka.Protocol;

namespace BindProxy.Kafka.Rewriting;

internal enum RewriteStatus
{
    /// <summary>Nothing to change: forward the original frame slice.</summary>
    Unchanged,

    /// <summary>A new frame (size prefix included) was written to the output.</summary>
    Rewritten,

    /// <summary>The frame could not be parsed; nothing was written. See <see cref="RewriteResult.Reason"/>.</summary>
    Malformed,
}

/// <summary>A capped ApiVersions entry whose minimum is above what the proxy parses; left as the broker sent it.</summary>
internal readonly record struct ApiVersionConflict(short ApiKey, short MinVersion, short MaxVersion, short Cap);

internal readonly record struct RewriteResult(RewriteStatus Status, MalformedReason Reason)
{
    public static RewriteResult Unchanged => new(RewriteStatus.Unchanged, MalformedReason.None);

    public static RewriteResult Rewritten => new(RewriteStatus.Rewritten, MalformedReason.None);

    private readonly IReadOnlyList<ApiVersionConflict>? _conflicts;

    /// <summary>ApiVersions only: entries that could not be capped. Empty otherwise (also for <c>default</c>).</summary>
    public IReadOnlyList<ApiVersionConflict> Conflicts
    {
        get => _conflicts ?? [];
        init => _conflicts = value;
    }

    public static RewriteResult Malformed(MalformedReason reason) => new(RewriteStatus.Malformed, reason);
}
