using System.Net.Security;
using System.Security.Authentication;
using System.Security.Cryptography.X509Certificates;
using BindProxy.Configuration;

namespace BindProxy.Transport;

/// <summary>
/// The TLS of one side of a connection, made per connection: toward an upstream (the proxy is the
/// client, asking for <see cref="ServerName"/>) or on a listener (the proxy is the server). A
/// <see cref="PipeSocket"/> given one runs its handshake before its first byte moves, and a
/// certificate the proxy refuses leaves here why (<see cref="CertificateProblem"/>), in words.
/// </summary>
internal sealed class TlsLeg
{
    private readonly TlsSettings? _client;
    private readonly ListenTlsSettings? _server;

    private TlsLeg(TlsSettings? client, ListenTlsSettings? server, string? serverName)
    {
        _client = client;
        _server = server;
        ServerName = serverName;
    }

    /// <summary>TLS toward an upstream, asking for and checking <paramref name="serverName"/>.</summary>
    public static TlsLeg ToUpstream(TlsSettings settings, string serverName) => new(settings, null, serverName);

    /// <summary>TLS on a listener.</summary>
    public static TlsLeg OnListener(ListenTlsSettings settings) => new(null, settings, null);

    public bool IsServer => _server is not null;

    /// <summary>The name asked for (SNI) and checked; null on a listener.</summary>
    public string? ServerName { get; }

    public TimeSpan HandshakeTimeout => _client?.HandshakeTimeout ?? _server!.HandshakeTimeout;

    /// <summary>Why the peer's certificate was refused, naming the host, the reason and the fix; null when it was not.</summary>
    public string? CertificateProblem { get; private set; }

    /// <summary>The handshake over <paramref name="stream"/>; the returned stream carries the plaintext.</summary>
    public async Task<SslStream> AuthenticateAsync(Stream stream, CancellationToken cancellationToken)
    {
        var tls = new SslStream(stream, leaveInnerStreamOpen: false);
        try
        {
            if (_server is { } server)
            {
                await tls.AuthenticateAsServerAsync(new SslServerAuthenticationOptions
                {
                    ServerCertificateContext = server.Context,
                    EnabledSslProtocols = server.Protocols,
                    ClientCertificateRequired = server.ClientCas is not null,
                    CertificateChainPolicy = server.ClientCas is { } cas ? Policy(cas) : null,
                    RemoteCertificateValidationCallback = server.ClientCas is null ? null : (_, certificate, _, errors) => CheckClient(certificate, errors),
                }, cancellationToken).ConfigureAwait(false);
            }
            else
            {
                var client = _client!;
                var options = ClientOptions(client, ServerName);
                options.RemoteCertificateValidationCallback = (_, certificate, chain, errors) => CheckServer(client, certificate, chain, errors);
                await tls.AuthenticateAsClientAsync(options, cancellationToken).ConfigureAwait(false);
            }

            return tls;
        }
        catch
        {
            await tls.DisposeAsync().ConfigureAwait(false);
            throw;
        }
    }

    /// <summary>
    /// The client side of <paramref name="settings"/> as .NET's TLS takes it (an Http route's
    /// handler too): versions, trust, client certificate, the name asked for; with <c>Insecure</c>,
    /// a check that accepts anything.
    /// </summary>
    public static SslClientAuthenticationOptions ClientOptions(TlsSettings settings, string? serverName) => new()
    {
        TargetHost = serverName,
        EnabledSslProtocols = settings.Protocols,
        CertificateChainPolicy = settings.TrustedCas is { } cas ? Policy(cas) : null,
        ClientCertificateContext = settings.ClientCertificate is { } certificate ? SslStreamCertificateContext.Create(certificate, settings.ClientChain, offline: true) : null,
        RemoteCertificateValidationCallback = settings.Insecure ? (_, _, _, errors) => settings.Insecure || errors == SslPolicyErrors.None : null,
    };

    private static X509ChainPolicy Policy(X509Certificate2Collection cas)
    {
        var policy = new X509ChainPolicy { TrustMode = X509ChainTrustMode.CustomRootTrust, RevocationMode = X509RevocationMode.NoCheck };
        policy.CustomTrustStore.AddRange(cas);
        return policy;
    }

    private bool CheckServer(TlsSettings settings, X509Certificate? certificate, X509Chain? chain, SslPolicyErrors errors)
    {
        if (settings.Insecure || errors == SslPolicyErrors.None)
        {
            return true;
        }

        CertificateProblem = Describe(certificate, chain, errors, ServerName!, settings.TrustedCas is null ? "the system's trust store" : $"Tls:CaFile ({settings.CaFile})",
            settings.TrustedCas is null ? "set Tls:CaFile to the CA that signed it" : "add the CA that signed it to Tls:CaFile");
        return false;
    }

    private bool CheckClient(X509Certificate? certificate, SslPolicyErrors errors)
    {
        // A client certificate is checked for its chain only: clients have no name to match.
        errors &= ~SslPolicyErrors.RemoteCertificateNameMismatch;
        if (errors == SslPolicyErrors.None)
        {
            return true;
        }

        CertificateProblem = certificate is null
            ? "sent no client certificate, which ListenTls:ClientCaFile requires; give the client its certificate (ssl.certificate.location, ssl.key.location)"
            : $"presented a client certificate, {certificate.Subject}, not signed by a CA of ListenTls:ClientCaFile ({errors})";
        return false;
    }

    /// <summary>A refused certificate in words: which, why, and what to change.</summary>
    private static string Describe(X509Certificate? presented, X509Chain? chain, SslPolicyErrors errors, string serverName, string trust, string trustFix)
    {
        if (presented is null || errors.HasFlag(SslPolicyErrors.RemoteCertificateNotAvailable))
        {
            return $"sent no certificate for {serverName}";
        }

        var certificate = presented as X509Certificate2 ?? new X509Certificate2(presented);
        var now = DateTime.Now;
        if (certificate.NotAfter < now)
        {
            return $"presented a certificate, {certificate.Subject}, that expired on {certificate.NotAfter.ToUniversalTime():yyyy-MM-dd HH:mm} UTC; renew the certificate on the upstream";
        }

        if (certificate.NotBefore > now)
        {
            return $"presented a certificate, {certificate.Subject}, not valid before {certificate.NotBefore.ToUniversalTime():yyyy-MM-dd HH:mm} UTC (check the clocks)";
        }

        var statuses = chain?.ChainStatus.Select(s => s.Status).Aggregate(X509ChainStatusFlags.NoError, (all, s) => all | s) ?? X509ChainStatusFlags.NoError;
        if (errors.HasFlag(SslPolicyErrors.RemoteCertificateChainErrors))
        {
            if ((statuses & (X509ChainStatusFlags.UntrustedRoot | X509ChainStatusFlags.PartialChain)) != 0 || statuses == X509ChainStatusFlags.NoError)
            {
                return $"presented a certificate, {certificate.Subject}, signed by {certificate.Issuer}, which {trust} does not trust (untrusted root); {trustFix}, or set Tls:Insecure for a test cluster";
            }

            if ((statuses & X509ChainStatusFlags.NotTimeValid) != 0)
            {
                return $"a certificate in the chain of {certificate.Subject} has expired or is not yet valid; renew it on the upstream";
            }

            return $"presented a certificate, {certificate.Subject}, that is refused: {string.Join("; ", chain!.ChainStatus.Select(s => s.StatusInformation.Trim()))}";
        }

        var names = CertificateFiles.NamesOf(certificate);
        return $"presented a certificate for {string.Join(", ", names)}, not {serverName} (name mismatch); set Tls:ServerName to one of those names, or connect by a name the certificate carries";
    }

    /// <summary>The negotiated session as the status page shows it.</summary>
    public static TlsSession Describe(SslStream tls) => new(
        TlsVersions.Name(tls.SslProtocol),
        tls.NegotiatedCipherSuite.ToString(),
        tls.RemoteCertificate?.Subject,
        tls.RemoteCertificate is X509Certificate2 certificate ? new DateTimeOffset(certificate.NotAfter.ToUniversalTime(), TimeSpan.Zero) : null);
}
