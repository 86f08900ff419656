using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.Configuration.Json;
using Microsoft.Extensions.FileProviders;

namespace BindProxy.Configuration;

/// <summary>
/// A JSON configuration file whose problems are kept in words, with line and column, instead of
/// thrown: the file provider's reload runs on a watcher thread that swallows what it throws, so an
/// edit that broke the file would otherwise go unreported while the proxy read an empty configuration.
/// </summary>
internal sealed class CheckedJsonSource : JsonConfigurationSource
{
    public CheckedJsonSource(string fullPath, bool reloadOnChange)
    {
        FullPath = fullPath;
        FileProvider = new PhysicalFileProvider(System.IO.Path.GetDirectoryName(fullPath)!);
        Path = System.IO.Path.GetFileName(fullPath);
        Optional = true; // a missing file is judged by the loader, which knows whether one is needed
        ReloadOnChange = reloadOnChange;

        // Keep serving (and let the reload listeners run) whatever the file holds; the problem is
        // read from the provider by whoever applies the configuration.
        OnLoadException = context => context.Ignore = true;
    }

    public string FullPath { get; }

    public override IConfigurationProvider Build(IConfigurationBuilder builder) => new CheckedJsonProvider(this);
}
