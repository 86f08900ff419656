namespace BindProxy.Configuration;

/// <summary>A configuration key nothing reads: its full path, and the keys known at its level.</summary>
/// <param name="TopLevel">
/// A top-level section: the file may hold other tools' sections, and <c>BINDPROXY_</c> environment
/// variables show up there too, so only near misses of the proxy's own names are mistakes.
/// </param>
internal sealed record UnknownKey(string Path, IReadOnlyList<string> Known, bool TopLevel = false)
{
    public string Key => Path[(Path.LastIndexOf(':') + 1)..];
}
