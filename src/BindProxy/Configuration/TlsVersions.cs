using System.Security.Authentication;

namespace BindProxy.Configuration;

/// <summary>The versions <c>MinVersion</c> takes, and what each lets a connection use.</summary>
internal static class TlsVersions
{
    public const string Default = "1.2";

    public const SslProtocols From12 = SslProtocols.Tls12 | SslProtocols.Tls13;

    /// <summary>
    /// <c>1.2</c> or <c>1.3</c> (also written <c>TLSv1.2</c>, <c>tls1.3</c>); 1.0 and 1.1 are not
    /// offered at all, as OpenSSL's default security level refuses them too.
    /// </summary>
    public static bool TryParse(string text, out SslProtocols protocols, out string error)
    {
        var version = text.Trim().ToUpperInvariant().Replace("TLSV", "", StringComparison.Ordinal).Replace("TLS", "", StringComparison.Ordinal).Trim();
        (protocols, error) = version switch
        {
            "1.2" => (From12, ""),
            "1.3" => (SslProtocols.Tls13, ""),
            "1.0" or "1.1" => (SslProtocols.None, $"TLS {version} is obsolete and not offered; expected 1.2 or 1.3"),
            _ => (SslProtocols.None, $"'{text}' is not a TLS version; expected 1.2 or 1.3"),
        };
        return error.Length == 0;
    }

    /// <summary>How a negotiated version is shown: <c>TLS 1.3</c>.</summary>
    public static string Name(SslProtocols protocol) => protocol switch
    {
        SslProtocols.Tls13 => "TLS 1.3",
        SslProtocols.Tls12 => "TLS 1.2",
        _ => protocol.ToString(),
    };
}
