using BindProxy.Addressing;
using BindProxy.Configuration;
using BindProxy.Tests.Infrastructure;

namespace BindProxy.Tests.Configuration;

/// <summary>Every configuration file the repository ships validates (comments and all).</summary>
public sealed class ShippedConfigTests
{
    public static TheoryData<string> Files()
    {
        var root = RepositoryRoot();
        var data = new TheoryData<string> { Path.Combine(root, "appsettings.json") };
        foreach (var file in Directory.GetFiles(Path.Combine(root, "config"), "*.json").Order(StringComparer.Ordinal))
        {
            data.Add(file);
        }

        return data;
    }

    [Theory]
    [MemberData(nameof(Files))]
    public async Task Validates(string file)
    {
        var configuration = ConfigLoader.Load(file, required: true, out var error);
        Assert.Null(error);
        var result = await new ConfigValidator(new SourceAddressProbe(), toxics: TestProxy.Toxics).ValidateAsync(ConfigReader.Read(configuration), CancellationToken.None);
        Assert.True(result.IsValid, string.Join("\n", result.Errors));
        Assert.NotEmpty(result.Model!.Routes);
    }

    internal static string RepositoryRoot()
    {
        var dir = new DirectoryInfo(AppContext.BaseDirectory);
        while (dir is not null && !File.Exists(Path.Combine(dir.FullName, "BindProxy.sln")))
        {
            dir = dir.Parent;
        }

        return dir?.FullName ?? throw new InvalidOperationException("BindProxy.sln not found above " + AppContext.BaseDirectory);
    }
}
