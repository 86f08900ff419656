using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using System.Text;

namespace BindProxy.Configuration;

/// <summary>
/// Reads the certificate files a route's <c>Tls</c> and <c>ListenTls</c> sections name: trust
/// (CA certificates) and identities (a certificate with its private key, and the intermediates
/// sent with it), in PEM, DER or PKCS#12. Every failure is a sentence naming the file and, where
/// the fix is elsewhere, the key to change; nothing throws.
/// </summary>
internal static class CertificateFiles
{
    /// <summary>A problem with one of the keys of a section: the key's name (<c>KeyFile</c>) and what is wrong.</summary>
    public readonly record struct Problem(string Key, string Message);

    /// <summary>
    /// The CA certificates of <paramref name="path"/>: every certificate of a PEM file, the one of a
    /// DER file, or those of a PKCS#12 file (opened with <paramref name="password"/>).
    /// </summary>
    public static X509Certificate2Collection? LoadTrust(string path, string? password, out string? error)
    {
        if (Missing(path) is { } missing)
        {
            error = missing;
            return null;
        }

        try
        {
            var certificates = new X509Certificate2Collection();
            if (IsPem(path))
            {
                certificates.ImportFromPemFile(path);
            }
            else if (IsPkcs12(path))
            {
                certificates.AddRange(X509CertificateLoader.LoadPkcs12CollectionFromFile(path, password, X509KeyStorageFlags.EphemeralKeySet));
            }
            else
            {
                certificates.Add(X509CertificateLoader.LoadCertificateFromFile(path));
            }

            error = certificates.Count == 0 ? $"no certificate in {path} (expected PEM blocks -----BEGIN CERTIFICATE-----)" : null;
            return error is null ? certificates : null;
        }
        catch (CryptographicException e)
        {
            error = $"{path} cannot be read as certificates (PEM, DER or PKCS#12): {e.Message}";
            return null;
        }
    }

    /// <summary>
    /// A certificate with its private key, and the certificates after it in the file (the
    /// intermediates to send along). PEM: the key in <paramref name="keyPath"/> or, without one, in
    /// the certificate's own file; PKCS#12: the certificate that has a key.
    /// </summary>
    public static (X509Certificate2 Certificate, X509Certificate2Collection Chain)? LoadIdentity(string certPath, string? keyPath, string? password,
        string certKey, string keyKey, string passwordKey, List<Problem> problems)
    {
        int before = problems.Count;
        if (Missing(certPath) is { } missingCert)
        {
            problems.Add(new(certKey, missingCert));
        }

        if (keyPath is not null && Missing(keyPath) is { } missingKey)
        {
            problems.Add(new(keyKey, missingKey));
        }

        if (problems.Count != before)
        {
            return null;
        }

        try
        {
            if (!IsPem(certPath))
            {
                if (keyPath is not null)
                {
                    problems.Add(new(keyKey, $"applies to a PEM {certKey}; {certPath} is not PEM (a PKCS#12 file carries its own key)"));
                    return null;
                }

                return LoadPkcs12Identity(certPath, password, certKey, passwordKey, problems);
            }

            var all = new X509Certificate2Collection();
            all.ImportFromPemFile(certPath);
            if (all.Count == 0)
            {
                problems.Add(new(certKey, $"no certificate in {certPath} (expected a PEM block -----BEGIN CERTIFICATE-----)"));
                return null;
            }

            var keyFile = keyPath ?? certPath;
            var keyText = File.ReadAllText(keyFile);
            string keyWhere = keyPath is null ? certKey : keyKey;
            if (!keyText.Contains("PRIVATE KEY-----", StringComparison.Ordinal))
            {
                problems.Add(new(keyWhere, keyPath is null
                    ? $"{certPath} holds no private key; give the certificate's key in {keyKey}"
                    : $"no private key in {keyFile} (expected a PEM block such as -----BEGIN PRIVATE KEY-----)"));
                return null;
            }

            bool encrypted = keyText.Contains("-----BEGIN ENCRYPTED PRIVATE KEY-----", StringComparison.Ordinal);
            if (encrypted && password is null)
            {
                problems.Add(new(passwordKey, $"is missing: the key in {keyFile} is encrypted"));
                return null;
            }

            X509Certificate2 certificate;
            try
            {
                certificate = encrypted
                    ? X509Certificate2.CreateFromEncryptedPemFile(certPath, password, keyPath)
                    : X509Certificate2.CreateFromPemFile(certPath, keyPath);
            }
            catch (ArgumentException)
            {
                problems.Add(new(keyWhere, $"the key in {keyFile} does not belong to the certificate in {certPath} ({all[0].Subject})"));
                return null;
            }
            catch (CryptographicException) when (encrypted)
            {
                problems.Add(new(passwordKey, $"does not decrypt the key in {keyFile}"));
                return null;
            }
            catch (CryptographicException e)
            {
                problems.Add(new(keyWhere, $"the key in {keyFile} cannot be used with the certificate in {certPath}: {e.Message}"));
                return null;
            }

            var chain = new X509Certificate2Collection();
            for (int i = 1; i < all.Count; i++)
            {
                chain.Add(all[i]);
            }

            return (Usable(certificate), chain);
        }
        catch (CryptographicException e)
        {
            problems.Add(new(certKey, $"{certPath} cannot be read: {e.Message}"));
            return null;
        }
        catch (IOException e)
        {
            problems.Add(new(certKey, $"{certPath} cannot be read: {e.Message}"));
            return null;
        }
        catch (UnauthorizedAccessException e)
        {
            problems.Add(new(certKey, $"{certPath} cannot be read: {e.Message}"));
            return null;
        }
    }

    private static (X509Certificate2, X509Certificate2Collection)? LoadPkcs12Identity(string path, string? password, string certKey, string passwordKey, List<Problem> problems)
    {
        X509Certificate2Collection all;
        try
        {
            all = X509CertificateLoader.LoadPkcs12CollectionFromFile(path, password, X509KeyStorageFlags.EphemeralKeySet);
        }
        catch (CryptographicException) when (IsPkcs12(path))
        {
            problems.Add(new(password is null ? certKey : passwordKey, password is null
                ? $"{path} cannot be opened without a password; give its Password"
                : $"does not open {path}"));
            return null;
        }
        catch (CryptographicException)
        {
            problems.Add(new(certKey, $"{path} is neither PEM (-----BEGIN CERTIFICATE-----) nor PKCS#12"));
            return null;
        }

        var identity = all.FirstOrDefault(c => c.HasPrivateKey);
        if (identity is null)
        {
            problems.Add(new(certKey, $"{path} holds no certificate with its private key"));
            return null;
        }

        var chain = new X509Certificate2Collection();
        chain.AddRange(all.Where(c => !ReferenceEquals(c, identity)).ToArray());
        return (Usable(identity), chain);
    }

    /// <summary>
    /// A key read from PEM is ephemeral; Windows' TLS needs it in a key store, which a PKCS#12
    /// round trip gives. Elsewhere the certificate is used as read.
    /// </summary>
    private static X509Certificate2 Usable(X509Certificate2 certificate)
    {
        if (!OperatingSystem.IsWindows())
        {
            return certificate;
        }

        using (certificate)
        {
            return X509CertificateLoader.LoadPkcs12(certificate.Export(X509ContentType.Pkcs12), null);
        }
    }

    private static string? Missing(string path)
    {
        if (File.Exists(path))
        {
            return null;
        }

        var full = Path.GetFullPath(path);
        return Directory.Exists(full) ? $"{full} is a directory, not a file"
            : Path.IsPathRooted(path) ? $"{path} does not exist"
            : $"{path} does not exist (relative paths are read from the working directory, {Environment.CurrentDirectory})";
    }

    /// <summary>True for a text file with a PEM block (as opposed to DER or PKCS#12).</summary>
    private static bool IsPem(string path)
    {
        Span<byte> head = stackalloc byte[4096];
        using var file = File.OpenRead(path);
        int read = file.ReadAtLeast(head, head.Length, throwOnEndOfStream: false);
        return Encoding.ASCII.GetString(head[..read]).Contains("-----BEGIN ", StringComparison.Ordinal);
    }

    private static bool IsPkcs12(string path) =>
        path.EndsWith(".p12", StringComparison.OrdinalIgnoreCase) || path.EndsWith(".pfx", StringComparison.OrdinalIgnoreCase);

    /// <summary>The names a certificate answers to: its DNS and IP subject alternative names, or its CN when it has none.</summary>
    public static IReadOnlyList<string> NamesOf(X509Certificate2 certificate)
    {
        var names = new List<string>();
        foreach (var extension in certificate.Extensions.OfType<X509SubjectAlternativeNameExtension>())
        {
            names.AddRange(extension.EnumerateDnsNames());
            names.AddRange(extension.EnumerateIPAddresses().Select(a => a.ToString()));
        }

        if (names.Count == 0 && certificate.GetNameInfo(X509NameType.SimpleName, forIssuer: false) is { Length: > 0 } cn)
        {
            names.Add(cn);
        }

        return names;
    }
}
