using System.Diagnostics;
using BindProxy.Tests.Configuration;

namespace BindProxy.Tests.Packaging;

/// <summary>
/// <c>dotnet pack</c> makes a .NET tool that installs and runs as README says: packed once, from
/// the build the tests run on (no rebuild), installed into a tool path of its own from that folder
/// only, and run from a directory of the user's.
/// </summary>
public sealed class ToolPackageTests
{
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(120);

    [Fact]
    public async Task The_packed_tool_installs_and_runs_version_and_check_reading_config_from_the_users_directory()
    {
        var root = Directory.CreateTempSubdirectory("bindproxy-tool-").FullName;
        try
        {
            var folder = await PackAsync(Directory.CreateDirectory(Path.Combine(root, "nupkg")).FullName);
            // The package folder is the only source: the install needs no network.
            var nugetConfig = Path.Combine(root, "nuget.config");
            await File.WriteAllTextAsync(nugetConfig, $"""
                <?xml version="1.0" encoding="utf-8"?>
                <configuration>
                  <packageSources>
                    <clear />
                    <add key="bindproxy" value="{folder}" />
                  </packageSources>
                </configuration>
                """);
            var toolPath = Path.Combine(root, "tools");
            var install = await RunAsync("dotnet", root, "tool", "install", "--tool-path", toolPath, "--add-source", folder, "--configfile", nugetConfig, "BindProxy");
            Assert.True(install.ExitCode == 0, install.Output);

            var bindproxy = Path.Combine(toolPath, OperatingSystem.IsWindows() ? "bindproxy.exe" : "bindproxy");
            var user = Directory.CreateDirectory(Path.Combine(root, "work")).FullName;

            var version = await RunAsync(bindproxy, user, "--version");
            Assert.True(version.ExitCode == 0, version.Output);
            Assert.Matches(@"^\d+\.\d+\.\d+", version.Output);

            var shipped = Path.Combine(ShippedConfigTests.RepositoryRoot(), "config", "several-services.json");
            var check = await RunAsync(bindproxy, user, "check", "--config", shipped);
            Assert.True(check.ExitCode == 0, check.Output);
            Assert.Contains("configuration OK: 3 route(s)", check.Output, StringComparison.Ordinal);

            // No config of its own: the default ./appsettings.json is the user's directory's, not the package's.
            var missing = await RunAsync(bindproxy, user, "check");
            Assert.Equal(1, missing.ExitCode);
            Assert.Contains(Path.Combine(user, "appsettings.json"), missing.Output, StringComparison.Ordinal);

            File.Copy(shipped, Path.Combine(user, "appsettings.json"));
            var local = await RunAsync(bindproxy, user, "check");
            Assert.True(local.ExitCode == 0, local.Output);
            Assert.Contains("configuration OK: 3 route(s)", local.Output, StringComparison.Ordinal);
        }
        finally
        {
            Directory.Delete(root, recursive: true);
        }
    }

    /// <summary>Packs the proxy project as built for these tests (same configuration, no rebuild) into a folder of its own.</summary>
    private static async Task<string> PackAsync(string folder)
    {
        var configuration = new DirectoryInfo(Path.TrimEndingDirectorySeparator(AppContext.BaseDirectory)).Parent!.Name;
        var project = Path.Combine(ShippedConfigTests.RepositoryRoot(), "src", "BindProxy", "BindProxy.csproj");
        var pack = await RunAsync("dotnet", folder, "pack", project, "-c", configuration, "--no-build", "-o", folder);
        Assert.True(pack.ExitCode == 0, pack.Output);
        Assert.Single(Directory.GetFiles(folder, "BindProxy.*.nupkg"));
        return folder;
    }

    private static async Task<(int ExitCode, string Output)> RunAsync(string file, string workingDirectory, params string[] args)
    {
        var info = new ProcessStartInfo(file) { RedirectStandardOutput = true, RedirectStandardError = true, WorkingDirectory = workingDirectory };
        foreach (var arg in args)
        {
            info.ArgumentList.Add(arg);
        }

        // The tool's launcher finds the runtime the tests run on, wherever it is installed.
        if (Environment.GetEnvironmentVariable("DOTNET_ROOT") is null && Environment.ProcessPath is { } host && Path.GetFileNameWithoutExtension(host) == "dotnet")
        {
            info.Environment["DOTNET_ROOT"] = Path.GetDirectoryName(host);
        }

        info.Environment["DOTNET_CLI_TELEMETRY_OPTOUT"] = "1";
        info.Environment["DOTNET_NOLOGO"] = "1";
        using var process = Process.Start(info)!;
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        try
        {
            await process.WaitForExitAsync().WaitAsync(Timeout);
        }
        catch (TimeoutException)
        {
            process.Kill(entireProcessTree: true);
            throw;
        }

        return (process.ExitCode, $"{await stdout}{await stderr}");
    }
}
