using System.Net.Security;
using System.Security.Authentication;
using System.Security.Cryptography.X509Certificates;

namespace BindProxy.Configuration;

/// <summary>
/// TLS on a route's listeners, validated from its <c>ListenTls</c> section: the certificate shown
/// (with its chain, ready for handshakes), the CAs a required client certificate must chain to,
/// the oldest version and the handshake's time limit. A Kafka route's broker listeners inherit it.
/// </summary>
internal sealed class ListenTlsSettings
{
    public required X509Certificate2 Certificate { get; init; }

    /// <summary>The certificate and its chain as handshakes send them, built once.</summary>
    public required SslStreamCertificateContext Context { get; init; }

    /// <summary>The <c>CertificateFile</c> as written.</summary>
    public required string CertificateFile { get; init; }

    /// <summary>When set, a client certificate chaining to one of these is required.</summary>
    public X509Certificate2Collection? ClientCas { get; init; }

    public SslProtocols Protocols { get; init; } = TlsVersions.From12;

    public string MinVersion { get; init; } = TlsVersions.Default;

    public TimeSpan HandshakeTimeout { get; init; } = TimeSpan.FromSeconds(10);

    public string Describe() =>
        $"certificate {Certificate.Subject} (expires {Certificate.NotAfter.ToUniversalTime():yyyy-MM-dd}), TLS {MinVersion}+{(ClientCas is null ? "" : ", client certificate required")}";
}
