namespace BindProxy.Configuration;

/// <summary>What one side of a connection negotiated: version, cipher, and the peer's certificate (subject and expiry) when it sent one.</summary>
internal sealed record TlsSession(string Version, string Cipher, string? PeerSubject, DateTimeOffset? PeerNotAfter);
