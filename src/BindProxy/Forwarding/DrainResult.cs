namespace BindProxy.Forwarding;

/// <summary>How a drain ended: how many were reset when its time ran out, and how many had still not closed after that.</summary>
internal readonly record struct DrainResult(int Aborted, int Left);
