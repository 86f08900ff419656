using System.Security.Cryptography.X509Certificates;
using BindProxy.Configuration;

namespace BindProxy.Tests.Infrastructure;

/// <summary>
/// Certificates made by a test, as PEM files in a directory of their own: a CA, a server
/// certificate for <c>localhost</c> and 127.0.0.1 signed by it, a client certificate, and the bad
/// ones (expired, for another name, from a CA nobody trusts).
/// </summary>
public sealed class TestCertificates : IDisposable
{
    private readonly TempDirectory _directory = new("bindproxy-certs-");

    public TestCertificates()
    {
        var now = DateTimeOffset.UtcNow;
        using var ca = LocalCertificates.CreateAuthority("BindProxy test CA", now.AddDays(-2), now.AddDays(30));
        LocalCertificates.WritePem(ca, CaFile, CaKeyFile);
        Write("server", LocalCertificates.Issue(ca, ["localhost", "127.0.0.1"], now.AddDays(-1), now.AddDays(10)));
        Write("client", LocalCertificates.Issue(ca, ["bindproxy-client"], now.AddDays(-1), now.AddDays(10), server: false, client: true));
        Write("expired", LocalCertificates.Issue(ca, ["localhost", "127.0.0.1"], now.AddDays(-2), now.AddDays(-1)));
        Write("wrong-name", LocalCertificates.Issue(ca, ["other.example"], now.AddDays(-1), now.AddDays(10)));
        using var stranger = LocalCertificates.CreateAuthority("Someone else's CA", now.AddDays(-2), now.AddDays(30));
        Write("untrusted", LocalCertificates.Issue(stranger, ["localhost", "127.0.0.1"], now.AddDays(-1), now.AddDays(10)));
    }

    public string Directory => _directory.Path;

    public string CaFile => Path.Combine(Directory, "ca.pem");

    public string CaKeyFile => Path.Combine(Directory, "ca-key.pem");

    /// <summary>The certificate file of <paramref name="name"/>: server, client, expired, wrong-name, untrusted.</summary>
    public string Cert(string name) => Path.Combine(Directory, $"{name}.pem");

    /// <summary>The key file of <paramref name="name"/>.</summary>
    public string Key(string name) => Path.Combine(Directory, $"{name}-key.pem");

    /// <summary>The certificate and its key in one file, as socat's <c>cert=</c> and stunnel take them.</summary>
    public string Combined(string name) => Path.Combine(Directory, $"{name}-combined.pem");

    private void Write(string name, X509Certificate2 certificate)
    {
        using (certificate)
        {
            LocalCertificates.WritePem(certificate, Cert(name), Key(name));
        }

        File.WriteAllText(Combined(name), File.ReadAllText(Cert(name)) + File.ReadAllText(Key(name)));
    }

    public void Dispose() => _directory.Dispose();
}
