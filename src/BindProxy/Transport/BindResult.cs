using System.Diagnostics.CodeAnalysis;
using System.Net;

namespace BindProxy.Transport;

/// <summary>A listener opened while the proxy runs: the endpoint it listens on (the real port for port 0), or why it could not.</summary>
internal readonly record struct BindResult(IPEndPoint? Bound, string? Error)
{
    [MemberNotNullWhen(true, nameof(Bound))]
    [MemberNotNullWhen(false, nameof(Error))]
    public bool IsBound => Bound is not null;

    public static BindResult Listening(IPEndPoint bound) => new(bound, null);

    public static BindResult Failed(string error) => new(null, error);
}
