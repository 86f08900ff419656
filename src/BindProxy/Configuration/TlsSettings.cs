using System.Net;
using System.Security.Authentication;
using System.Security.Cryptography.X509Certificates;

namespace BindProxy.Configuration;

/// <summary>
/// TLS toward a route's upstream, validated from its <c>Tls</c> section: whom to trust, the client
/// certificate, the name to ask for and check, the oldest version. A Kafka route's broker routes
/// inherit it, each connecting under its broker's own name (<see cref="ServerNameFor"/>).
/// </summary>
internal sealed class TlsSettings
{
    /// <summary>The CAs the upstream's certificate must chain to; null: the system's trust store.</summary>
    public X509Certificate2Collection? TrustedCas { get; init; }

    /// <summary>The <c>CaFile</c> as written, for messages and the status page.</summary>
    public string? CaFile { get; init; }

    /// <summary>The client certificate, with its key, for mutual TLS; null: none.</summary>
    public X509Certificate2? ClientCertificate { get; init; }

    /// <summary>Intermediates sent after the client certificate.</summary>
    public X509Certificate2Collection ClientChain { get; init; } = [];

    /// <summary>The name asked for and checked, when the section sets one.</summary>
    public string? ServerName { get; init; }

    public SslProtocols Protocols { get; init; } = TlsVersions.From12;

    /// <summary>The oldest version as written (<c>1.2</c>).</summary>
    public string MinVersion { get; init; } = TlsVersions.Default;

    /// <summary>Any certificate under any name is accepted.</summary>
    public bool Insecure { get; init; }

    public TimeSpan HandshakeTimeout { get; init; } = TimeSpan.FromSeconds(10);

    /// <summary>
    /// The name a connection of <paramref name="route"/> to <paramref name="destination"/> asks for
    /// (SNI) and checks the certificate against: for a configured route its <c>ServerName</c>, else
    /// the upstream's host; for a Kafka broker's route the broker's advertised host (the
    /// <c>ServerName</c> when that is an IP address). An address is checked against the
    /// certificate's IP names and sends no SNI.
    /// </summary>
    public string ServerNameFor(RouteModel route, IPEndPoint destination)
    {
        var host = route.Upstream.Host;
        if (route.Parent is null)
        {
            return ServerName ?? host ?? destination.Address.ToString();
        }

        return host ?? ServerName ?? destination.Address.ToString();
    }

    /// <summary>What the status page and the route line say: trust, name, version, client certificate.</summary>
    public string Describe() => string.Join(", ", new[]
    {
        Insecure ? "INSECURE: certificates not verified" : TrustedCas is null ? "system trust store" : $"CAs of {CaFile}",
        ServerName is null ? null : $"server name {ServerName}",
        $"TLS {MinVersion}+",
        ClientCertificate is null ? null : $"client certificate {ClientCertificate.Subject}",
    }.Where(p => p is not null));
}
