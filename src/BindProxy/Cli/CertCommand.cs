using System.CommandLine;
using System.Net;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using BindProxy.Addressing;
using BindProxy.Configuration;

namespace BindProxy.Cli;

/// <summary>
/// <c>bindproxy cert [--out DIR]</c>: a local CA (kept and reused when DIR already has one) and a
/// certificate it signs for the configured listen addresses (and localhost and this host's
/// name), for <c>ListenTls</c>; then the route and client settings that use them.
/// </summary>
internal static class CertCommand
{
    private const int ExitOk = 0;
    private const int ExitFailed = 2;

    public static Command Create(Option<string?> config)
    {
        var output = new Option<string?>("--out") { Description = "Directory for ca.pem, ca-key.pem, proxy.pem and proxy-key.pem (default: the working directory).", HelpName = "DIR" };
        var command = new Command("cert", "Make a local CA and a certificate for the configured listen addresses (for ListenTls), and print the client settings.") { output };
        command.SetAction(parse => Run(parse.GetValue(config), parse.GetValue(output) ?? "."));
        return command;
    }

    private static int Run(string? configPath, string directory)
    {
        var configuration = ConfigLoader.Load(configPath, required: configPath is not null, reloadOnChange: false, out var loadError);
        if (loadError is not null)
        {
            Console.Error.WriteLine($"error: {loadError}");
            return ExitFailed;
        }

        var names = Names(ConfigLoader.Read(configuration, new QuickRoute(null, null, null, null, null, null, null, null)));
        try
        {
            Directory.CreateDirectory(directory);
            var (caFile, caKeyFile) = (Path.Combine(directory, "ca.pem"), Path.Combine(directory, "ca-key.pem"));
            var now = DateTimeOffset.UtcNow;
            bool reused = File.Exists(caFile) && File.Exists(caKeyFile);
            using var ca = reused
                ? X509Certificate2.CreateFromPemFile(caFile, caKeyFile)
                : LocalCertificates.CreateAuthority($"BindProxy local CA ({Environment.MachineName})", now.AddMinutes(-5), now.AddYears(5));
            if (!reused)
            {
                LocalCertificates.WritePem(ca, caFile, caKeyFile);
            }

            var (certFile, keyFile) = (Path.Combine(directory, "proxy.pem"), Path.Combine(directory, "proxy-key.pem"));
            using var certificate = LocalCertificates.Issue(ca, names, now.AddMinutes(-5), now.AddYears(1));
            LocalCertificates.WritePem(certificate, certFile, keyFile);

            string Full(string path) => Path.GetFullPath(path);
            Console.WriteLine($"{(reused ? "kept" : "made")} the CA {Full(caFile)} (its key: {Full(caKeyFile)}; keep it private)");
            Console.WriteLine($"made {Full(certFile)} and {Full(keyFile)} for {string.Join(", ", names)}, valid until {certificate.NotAfter.ToUniversalTime():yyyy-MM-dd}");
            Console.WriteLine();
            Console.WriteLine("On each route that clients should reach with TLS:");
            Console.WriteLine($"  \"ListenTls\": {{ \"CertificateFile\": \"{Full(certFile)}\", \"KeyFile\": \"{Full(keyFile)}\" }}");
            Console.WriteLine();
            Console.WriteLine("Kafka clients (librdkafka, kcat -X, Java):");
            Console.WriteLine("  security.protocol=SSL");
            Console.WriteLine($"  ssl.ca.location={Full(caFile)}");
            Console.WriteLine("  (Java: ssl.truststore.type=PEM, ssl.truststore.location=" + Full(caFile) + ")");
            Console.WriteLine($"Other clients: trust {Full(caFile)}; e.g. openssl s_client -CAfile {Full(caFile)} -connect HOST:PORT");
            return ExitOk;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or CryptographicException)
        {
            Console.Error.WriteLine($"error: cannot write the certificates to {Path.GetFullPath(directory)}: {e.Message}");
            return ExitFailed;
        }
    }

    /// <summary>The names a client may connect by: localhost, 127.0.0.1, every listen address and advertised host, and this host's name for a wildcard.</summary>
    private static List<string> Names(ProxyConfig config)
    {
        var names = new List<string> { "localhost", "127.0.0.1", "::1" };
        foreach (var route in config.Routes)
        {
            if (route.AdvertisedHost is { Length: > 0 } advertised)
            {
                names.Add(advertised);
            }

            if (!EndpointSpec.TryParse(route.Listen, allowPortZero: true, out var listen, out _) || listen.Count > 256)
            {
                continue;
            }

            foreach (var endpoint in listen.Endpoints)
            {
                if (endpoint.Address.Equals(IPAddress.Any) || endpoint.Address.Equals(IPAddress.IPv6Any))
                {
                    names.Add(Dns.GetHostName());
                }
                else
                {
                    names.Add(endpoint.Address.ToString());
                }
            }
        }

        return [.. names.Distinct(StringComparer.OrdinalIgnoreCase)];
    }
}
