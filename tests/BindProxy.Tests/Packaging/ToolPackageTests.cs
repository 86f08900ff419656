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

            await ReadmesGlobalInstallRunsAsync(root, folder, nugetConfig);
        }
        finally
        {
            Directory.Delete(root, recursive: true);
        }
    }

    /// <summary>
    /// README's install block as a new user runs it, after its pack and <c>install -g</c> lines
    /// (done here with this package, into a home of the test's own): without its PATH line the
    /// command is not found; with it, the lines after it run as written, sudo's included.
    /// </summary>
    private static async Task ReadmesGlobalInstallRunsAsync(string root, string folder, string nugetConfig)
    {
        var readme = await File.ReadAllTextAsync(Path.Combine(ShippedConfigTests.RepositoryRoot(), "README.md"));
        var install = readme[readme.IndexOf("\n## Install\n", StringComparison.Ordinal)..];
        var block = install[(install.IndexOf("```sh\n", StringComparison.Ordinal) + 6)..];
        var lines = block[..block.IndexOf("```", StringComparison.Ordinal)].Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Equal("dotnet pack src/BindProxy -c Release -o nupkg", lines[0]);
        Assert.Equal("dotnet tool install -g BindProxy --add-source ./nupkg", lines[1]);
        Assert.StartsWith("export PATH=", lines[2], StringComparison.Ordinal);
        Assert.Contains(lines[3..], l => l.StartsWith("sudo ", StringComparison.Ordinal));

        var home = Directory.CreateDirectory(Path.Combine(root, "home")).FullName;
        var environment = new Dictionary<string, string> { ["HOME"] = home, ["PATH"] = "/usr/local/bin:/usr/bin:/bin" + DotnetDirectory() };
        var installed = await RunAsync("dotnet", root, environment, "tool", "install", "-g", "--add-source", folder, "--configfile", nugetConfig, "BindProxy");
        Assert.True(installed.ExitCode == 0, installed.Output);

        var notFound = await RunAsync("bash", root, environment, "-c", "bindproxy --version");
        Assert.True(notFound.ExitCode == 127, $"bindproxy ran without README's PATH line: {notFound.Output}");

        if (Environment.UserName != "root" || Infrastructure.ExternalTool.Find("sudo") is null)
        {
            Infrastructure.ExternalTool.Unavailable("README's sudo line runs here only as root, with sudo installed (Debian package: sudo)");
        }

        var script = "set -e\n" + string.Join('\n', lines[2..]);
        var run = await RunAsync("bash", ShippedConfigTests.RepositoryRoot(), environment, "-c", script);
        Assert.True(run.ExitCode == 0, $"{script}\n{run.Output}");
        Assert.Matches(@"^\d+\.\d+\.\d+.*\n\d+\.\d+\.\d+", run.Output);
        Assert.Contains("configuration OK: 3 route(s)", run.Output, StringComparison.Ordinal);
    }

    /// <summary>":DIR" for the directory of the dotnet on the tests' PATH, when it is not in /usr/bin or /bin.</summary>
    private static string DotnetDirectory() =>
        Infrastructure.ExternalTool.Find("dotnet") is { } dotnet && Path.GetDirectoryName(dotnet) is { } dir && dir is not ("/usr/bin" or "/bin")
            ? ":" + dir
            : "";

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

    private static Task<(int ExitCode, string Output)> RunAsync(string file, string workingDirectory, params string[] args) =>
        RunAsync(file, workingDirectory, null, args);

    private static async Task<(int ExitCode, string Output)> RunAsync(string file, string workingDirectory, IReadOnlyDictionary<string, string>? environment, params string[] args)
    {
        var info = new ProcessStartInfo(file) { RedirectStandardOutput = true, RedirectStandardError = true, WorkingDirectory = workingDirectory };
        foreach (var arg in args)
        {
            info.ArgumentList.Add(arg);
        }

        foreach (var (name, value) in environment ?? new Dictionary<string, string>())
        {
            info.Environment[name] = value;
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
