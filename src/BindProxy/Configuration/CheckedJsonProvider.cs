using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.Configuration.Json;

namespace BindProxy.Configuration;

/// <summary>Loads a <see cref="CheckedJsonSource"/>, keeping what is wrong with the file as <see cref="Problem"/>.</summary>
internal sealed class CheckedJsonProvider(CheckedJsonSource source) : JsonConfigurationProvider(source)
{
    private volatile string? _problem;

    /// <summary>What is wrong with the file as last read, naming it; null when it read well.</summary>
    public string? Problem => File.Exists(source.FullPath) ? _problem : $"configuration file {source.FullPath} does not exist";

    public string FullPath => source.FullPath;

    public override void Load(Stream stream)
    {
        using var copy = new MemoryStream();
        stream.CopyTo(copy);
        if (JsonFileCheck.Check(copy.GetBuffer().AsSpan(0, (int)copy.Length)) is { } problem)
        {
            _problem = $"configuration file {source.FullPath} {problem}";
            throw new FormatException(_problem); // the source ignores it; the data is left empty
        }

        copy.Position = 0;
        try
        {
            base.Load(copy);
            _problem = null;
        }
        catch (FormatException e)
        {
            _problem = $"configuration file {source.FullPath} cannot be read: {e.Message}";
            throw;
        }
    }

    /// <summary>The problem of the first checked file behind <paramref name="configuration"/>, or null.</summary>
    public static string? ProblemOf(IConfiguration configuration) =>
        configuration is IConfigurationRoot root ? root.Providers.OfType<CheckedJsonProvider>().Select(p => p.Problem).FirstOrDefault(p => p is not null) : null;
}
