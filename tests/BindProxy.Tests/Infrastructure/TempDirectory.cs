namespace BindProxy.Tests.Infrastructure;

/// <summary>A directory of its own for one test, removed with everything in it at the end.</summary>
public sealed class TempDirectory : IDisposable
{
    public TempDirectory(string prefix = "bindproxy-") => Path = Directory.CreateTempSubdirectory(prefix).FullName;

    public string Path { get; }

    public void Dispose()
    {
        try
        {
            Directory.Delete(Path, recursive: true);
        }
        catch (IOException)
        {
        }
        catch (UnauthorizedAccessException)
        {
        }
    }
}
