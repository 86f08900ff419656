using System.Diagnostics;

namespace BindProxy.Tests.Infrastructure;

/// <summary>
/// Tests that need a tool from outside the .NET SDK (tshark, kcat, chromium, root) skip with the
/// reason when it is missing, unless <c>BINDPROXY_REQUIRE_ALL=1</c> (set by <c>.ci/run</c>) makes
/// a missing tool a failure.
/// </summary>
public static class ExternalTool
{
    public const string RequireAllVariable = "BINDPROXY_REQUIRE_ALL";

    public static bool RequireAll => Environment.GetEnvironmentVariable(RequireAllVariable) == "1";

    /// <summary>The full path of <paramref name="name"/> on PATH, or skips/fails the test.</summary>
    public static string Require(string name)
    {
        var path = Find(name);
        if (path is null)
        {
            Unavailable($"'{name}' is not installed (on Debian: apt-get install {name})");
        }

        return path!;
    }

    /// <summary>Skips/fails unless running as root (packet capture, network namespaces).</summary>
    public static void RequireRoot(string why)
    {
        if (!OperatingSystem.IsLinux() || Environment.UserName != "root")
        {
            Unavailable($"needs root on Linux: {why}");
        }
    }

    public static void Unavailable(string reason)
    {
        if (RequireAll)
        {
            Assert.Fail($"{reason}; {RequireAllVariable}=1 demands it");
        }

        Assert.Skip(reason);
    }

    public static string? Find(string name) =>
        (Environment.GetEnvironmentVariable("PATH") ?? "")
            .Split(Path.PathSeparator, StringSplitOptions.RemoveEmptyEntries)
            .Select(dir => Path.Combine(dir, name))
            .FirstOrDefault(File.Exists);

    /// <summary>Runs a tool to completion and returns its stdout; fails the test on a non-zero exit.</summary>
    public static async Task<string> RunAsync(string file, params string[] args)
    {
        var info = new ProcessStartInfo(file) { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var arg in args)
        {
            info.ArgumentList.Add(arg);
        }

        using var process = Process.Start(info)!;
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        await process.WaitForExitAsync().WaitAsync(TimeSpan.FromSeconds(60));
        Assert.True(process.ExitCode == 0, $"{file} {string.Join(' ', args)} exited {process.ExitCode}: {await stderr}");
        return await stdout;
    }
}
