namespace BindProxy.Configuration;

/// <summary>Loads the configuration file (plus <c>BINDPROXY_</c> environment variables).</summary>
internal static class ConfigLoader
{
    public const string DefaultFile = "appsettings.json";

    public const string EnvironmentPrefix = "BINDPROXY_";

    /// <summary>
    /// Builds the configuration from <paramref name="path"/>. A missing file is an error only when
    /// the user named it, or when no quick route stands in for the file's routes; a file that is
    /// not a JSON object is an error naming its line and column.
    /// </summary>
    public static IConfigurationRoot Load(string? path, bool required, out string? error) => Load(path, required, reloadOnChange: false, out error);

    public static IConfigurationRoot Load(string? path, bool required, bool reloadOnChange, out string? error)
    {
        var file = Path.GetFullPath(path ?? DefaultFile);
        try
        {
            var configuration = new ConfigurationBuilder()
                .Add(new CheckedJsonSource(file, reloadOnChange))
                .AddEnvironmentVariables(EnvironmentPrefix)
                .Build();
            error = File.Exists(file) || required ? CheckedJsonProvider.ProblemOf(configuration) : null;
            return configuration;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            // The provider opens the file outside its own error handling.
            error = $"configuration file {file} cannot be read: {e.Message}";
            return new ConfigurationBuilder().Build();
        }
    }

    /// <summary>
    /// What is wrong with the configuration file now (it no longer exists, or is not JSON), or null.
    /// Read before each reload: a broken file reads as an empty configuration.
    /// </summary>
    public static string? Problem(IConfiguration configuration) => CheckedJsonProvider.ProblemOf(configuration);

    /// <param name="admin">The <c>--admin</c> option; replaces the file's <c>Admin:Listen</c> when set.</param>
    /// <param name="engine">The <c>--engine</c> option; replaces the file's <c>BindProxy:Engine</c> when set.</param>
    public static ProxyConfig Read(IConfiguration configuration, QuickRoute quick, string? admin = null, string? engine = null)
    {
        var file = ConfigReader.Read(configuration);
        var config = quick.IsSet ? file with { Routes = [quick.ToRouteConfig()] } : file;
        config = engine is null ? config : config with { Engine = engine };
        return admin is null ? config : config with { Admin = (config.Admin ?? new AdminConfig()) with { Listen = admin } };
    }
}
