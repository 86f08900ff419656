using System.Security.Authentication;
using BindProxy.Addressing;
using BindProxy.Configuration;
using BindProxy.Interception;
using BindProxy.Tests.Infrastructure;
using Microsoft.Extensions.Configuration;

namespace BindProxy.Tests.Configuration;

/// <summary>
/// A route's <c>Tls</c> and <c>ListenTls</c> sections as the validator reads them, with
/// certificate files made here: good files load, and every mistake (a missing file, a key without
/// its certificate, a key of another certificate, a bad version, a typo) is reported at once with
/// its place.
/// </summary>
public sealed class TlsConfigTests : IDisposable
{
    private readonly TestCertificates _certs = new();

    public void Dispose() => _certs.Dispose();

    private static async Task<ValidationResult> ValidateAsync(Dictionary<string, string?> keys)
    {
        var configuration = new ConfigurationBuilder().AddInMemoryCollection(keys).Build();
        return await new ConfigValidator(new SourceAddressProbe(), new InterceptionProbe()).ValidateAsync(ConfigReader.Read(configuration), CancellationToken.None);
    }

    private static Dictionary<string, string?> Route(string name, string section, params (string Key, string? Value)[] keys)
    {
        var all = new Dictionary<string, string?>
        {
            [$"BindProxy:Routes:{name}:Listen"] = "127.0.0.1:0",
            [$"BindProxy:Routes:{name}:Upstream"] = "localhost:9093",
            [$"BindProxy:Routes:{name}:Source"] = "127.0.0.2",
        };
        foreach (var (key, value) in keys)
        {
            all[$"BindProxy:Routes:{name}:{section}:{key}"] = value;
        }

        return all;
    }

    private static void AssertHas(IEnumerable<string> errors, string expected) =>
        Assert.True(errors.Any(e => e.StartsWith(expected, StringComparison.Ordinal)), $"no line starting with\n  {expected}\nin\n  {string.Join("\n  ", errors)}");

    [Fact]
    public async Task A_route_with_both_sections_carries_the_loaded_certificates_and_its_members_inherit_them()
    {
        var keys = Route("r", "Tls", ("CaFile", _certs.CaFile), ("CertificateFile", _certs.Cert("client")), ("KeyFile", _certs.Key("client")), ("MinVersion", "TLSv1.3"));
        foreach (var (key, value) in Route("r", "ListenTls", ("CertificateFile", _certs.Cert("server")), ("KeyFile", _certs.Key("server")), ("ClientCaFile", _certs.CaFile)))
        {
            keys[key] = value;
        }

        var result = await ValidateAsync(keys);
        Assert.True(result.IsValid, string.Join("\n", result.Errors));
        var route = Assert.Single(result.Model!.Routes);
        var tls = Assert.IsType<TlsSettings>(route.Tls);
        Assert.Equal("CN=BindProxy test CA", Assert.Single(tls.TrustedCas!).Subject);
        Assert.True(tls.ClientCertificate!.HasPrivateKey);
        Assert.Equal(SslProtocols.Tls13, tls.Protocols);
        Assert.Equal("localhost", tls.ServerNameFor(route, new System.Net.IPEndPoint(System.Net.IPAddress.Loopback, 9093)));
        var listen = Assert.IsType<ListenTlsSettings>(route.ListenTls);
        Assert.Equal("CN=localhost", listen.Certificate.Subject);
        Assert.NotNull(listen.ClientCas);
        Assert.Empty(result.Warnings);
    }

    [Fact]
    public async Task Enabled_false_keeps_the_section_and_connects_in_plaintext()
    {
        var result = await ValidateAsync(Route("r", "Tls", ("Enabled", "false"), ("CaFile", _certs.CaFile)));
        Assert.True(result.IsValid, string.Join("\n", result.Errors));
        Assert.Null(Assert.Single(result.Model!.Routes).Tls);
    }

    [Fact]
    public async Task Insecure_warns_at_startup()
    {
        var result = await ValidateAsync(Route("r", "Tls", ("Insecure", "true")));
        Assert.True(result.IsValid, string.Join("\n", result.Errors));
        Assert.True(Assert.Single(result.Model!.Routes).Tls!.Insecure);
        AssertHas(result.Warnings, "route 'r': Tls:Insecure is true: the upstream's certificate is not verified");
    }

    [Fact]
    public async Task Every_mistake_in_the_sections_is_reported_at_once_with_route_and_key()
    {
        var keys = new Dictionary<string, string?>();
        foreach (var route in new[]
        {
            Route("missing-ca", "Tls", ("CaFile", Path.Combine(_certs.Directory, "nope.pem"))),
            Route("key-alone", "Tls", ("KeyFile", _certs.Key("client"))),
            Route("other-key", "Tls", ("CertificateFile", _certs.Cert("client")), ("KeyFile", _certs.Key("server"))),
            Route("no-key", "Tls", ("CertificateFile", _certs.Cert("client"))),
            Route("old", "Tls", ("MinVersion", "1.0")),
            Route("bad-version", "Tls", ("MinVersion", "2")),
            Route("typo", "Tls", ("CaFlie", _certs.CaFile)),
            Route("not-a-flag", "Tls", ("Insecure", "yes")),
            Route("no-cert", "ListenTls", ("KeyFile", _certs.Key("server"))),
            Route("not-a-cert", "ListenTls", ("CertificateFile", _certs.Key("server"))),
        })
        {
            foreach (var (key, value) in route)
            {
                keys[key] = value;
            }
        }

        var result = await ValidateAsync(keys);
        var errors = result.Errors.Select(e => e.ToString()).ToList();
        AssertHas(errors, $"route 'missing-ca': Tls:CaFile: {Path.Combine(_certs.Directory, "nope.pem")} does not exist");
        AssertHas(errors, "route 'key-alone': Tls:KeyFile: is set without CertificateFile");
        AssertHas(errors, $"route 'other-key': Tls:KeyFile: the key in {_certs.Key("server")} does not belong to the certificate in {_certs.Cert("client")}");
        AssertHas(errors, $"route 'no-key': Tls:CertificateFile: {_certs.Cert("client")} holds no private key; give the certificate's key in KeyFile");
        AssertHas(errors, "route 'old': Tls:MinVersion: TLS 1.0 is obsolete");
        AssertHas(errors, "route 'bad-version': Tls:MinVersion: '2' is not a TLS version; expected 1.2 or 1.3");
        AssertHas(errors, "route 'typo': Tls:CaFlie: unknown key; did you mean CaFile?");
        AssertHas(errors, "route 'not-a-flag': Tls:Insecure: 'yes' is neither true nor false");
        AssertHas(errors, "route 'no-cert': ListenTls:CertificateFile: is missing");
        AssertHas(errors, "route 'no-cert': ListenTls:KeyFile: is set without CertificateFile");
        AssertHas(errors, "route 'not-a-cert': ListenTls:CertificateFile: no certificate in");
    }

    [Fact]
    public async Task An_expired_certificate_on_the_listener_is_a_warning_that_names_it()
    {
        var result = await ValidateAsync(Route("r", "ListenTls", ("CertificateFile", _certs.Cert("expired")), ("KeyFile", _certs.Key("expired"))));
        Assert.True(result.IsValid, string.Join("\n", result.Errors));
        AssertHas(result.Warnings, "route 'r': ListenTls:CertificateFile: CN=localhost expired on ");
    }

    [Fact]
    public async Task ListenTls_on_an_Http_route_is_refused()
    {
        var keys = Route("r", "ListenTls", ("CertificateFile", _certs.Cert("server")), ("KeyFile", _certs.Key("server")));
        keys["BindProxy:Routes:r:Protocol"] = "Http";
        var result = await ValidateAsync(keys);
        AssertHas(result.Errors.Select(e => e.ToString()), "route 'r': ListenTls: applies to Tcp and Kafka routes");
    }
}
