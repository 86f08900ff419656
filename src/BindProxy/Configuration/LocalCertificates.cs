using System.Net;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;

namespace BindProxy.Configuration;

/// <summary>
/// Makes a local certificate authority and certificates it signs (ECDSA P-256), for
/// <c>bindproxy cert</c> and for test fixtures: a listener's certificate for its addresses, a
/// client certificate for mutual TLS. Written as PEM: the certificate in one file, its key
/// (unencrypted PKCS#8) in another.
/// </summary>
internal static class LocalCertificates
{
    /// <summary>A CA certificate with its key, valid from <paramref name="notBefore"/> to <paramref name="notAfter"/>.</summary>
    public static X509Certificate2 CreateAuthority(string name, DateTimeOffset notBefore, DateTimeOffset notAfter)
    {
        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var request = new CertificateRequest($"CN={name}", key, HashAlgorithmName.SHA256);
        request.CertificateExtensions.Add(new X509BasicConstraintsExtension(certificateAuthority: true, hasPathLengthConstraint: true, pathLengthConstraint: 0, critical: true));
        request.CertificateExtensions.Add(new X509KeyUsageExtension(X509KeyUsageFlags.KeyCertSign | X509KeyUsageFlags.CrlSign, critical: true));
        request.CertificateExtensions.Add(new X509SubjectKeyIdentifierExtension(request.PublicKey, critical: false));
        return request.CreateSelfSigned(notBefore, notAfter);
    }

    /// <summary>
    /// A certificate signed by <paramref name="authority"/> for <paramref name="names"/> (host names
    /// and IP addresses, as subject alternative names; the first is also the CN), for a server,
    /// a client, or both.
    /// </summary>
    public static X509Certificate2 Issue(X509Certificate2 authority, IReadOnlyList<string> names, DateTimeOffset notBefore, DateTimeOffset notAfter,
        bool server = true, bool client = false)
    {
        ArgumentOutOfRangeException.ThrowIfZero(names.Count);
        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var request = new CertificateRequest($"CN={names[0]}", key, HashAlgorithmName.SHA256);
        var alternative = new SubjectAlternativeNameBuilder();
        foreach (var name in names)
        {
            if (IPAddress.TryParse(name, out var address))
            {
                alternative.AddIpAddress(address);
            }
            else
            {
                alternative.AddDnsName(name);
            }
        }

        request.CertificateExtensions.Add(alternative.Build());
        request.CertificateExtensions.Add(new X509BasicConstraintsExtension(certificateAuthority: false, hasPathLengthConstraint: false, pathLengthConstraint: 0, critical: true));
        request.CertificateExtensions.Add(new X509KeyUsageExtension(X509KeyUsageFlags.DigitalSignature | X509KeyUsageFlags.KeyAgreement, critical: true));
        var usages = new OidCollection();
        if (server)
        {
            usages.Add(new Oid("1.3.6.1.5.5.7.3.1"));
        }

        if (client)
        {
            usages.Add(new Oid("1.3.6.1.5.5.7.3.2"));
        }

        request.CertificateExtensions.Add(new X509EnhancedKeyUsageExtension(usages, critical: false));
        request.CertificateExtensions.Add(X509AuthorityKeyIdentifierExtension.CreateFromCertificate(authority, includeKeyIdentifier: true, includeIssuerAndSerial: false));

        // Not after the authority's own end, which would make the chain invalid.
        var end = notAfter > authority.NotAfter ? new DateTimeOffset(authority.NotAfter) : notAfter;
        Span<byte> serial = stackalloc byte[16];
        RandomNumberGenerator.Fill(serial);
        serial[0] &= 0x7f;
        using var issued = request.Create(authority, notBefore, end, serial);
        return issued.CopyWithPrivateKey(key);
    }

    /// <summary>Writes <paramref name="certificate"/> to <paramref name="certificatePath"/> and, when given, its key to <paramref name="keyPath"/> (mode 600 on Unix).</summary>
    public static void WritePem(X509Certificate2 certificate, string certificatePath, string? keyPath)
    {
        File.WriteAllText(certificatePath, certificate.ExportCertificatePem() + "\n");
        if (keyPath is null)
        {
            return;
        }

        using var key = certificate.GetECDsaPrivateKey() ?? throw new InvalidOperationException($"{certificate.Subject} has no ECDSA private key");
        File.WriteAllText(keyPath, key.ExportPkcs8PrivateKeyPem() + "\n");
        if (!OperatingSystem.IsWindows())
        {
            File.SetUnixFileMode(keyPath, UnixFileMode.UserRead | UnixFileMode.UserWrite);
        }
    }
}
