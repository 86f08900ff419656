using System.Net;
using System.Net.Sockets;
using BindProxy.Addressing;
using BindProxy.Configuration;
using BindProxy.Forwarding;
using BindProxy.Hosting;
using BindProxy.Tests.Infrastructure;
using Microsoft.Extensions.DependencyInjection;

namespace BindProxy.Tests.Capture;

/// <summary>
/// The <c>Capture</c> section: rolling pcapng files, each opening in tshark on its own, bounded on
/// disk, holding only the connections its selectors pick, turned on, changed and off by a reload.
/// </summary>
public sealed class CaptureFilesTests
{
    private static readonly TimeSpan Prompt = TimeSpan.FromSeconds(10);

    private static string Config(string engine, string upstream, string? capture) =>
        "{ \"BindProxy\": { \"Engine\": \"" + engine + "\", \"Routes\": { \"test\": { \"Listen\": \"127.0.0.1:0\", \"Upstream\": \"" + upstream +
        "\", \"Source\": \"127.0.0.2-127.0.0.3\" } } }" + (capture is null ? "" : ", \"Capture\": " + capture) + " }";

    private static string Json(string path) => path.Replace("\\", "\\\\", StringComparison.Ordinal);

    [Theory]
    [MemberData(nameof(Engines.Tcp), MemberType = typeof(Engines))]
    public async Task Files_roll_over_each_opens_on_its_own_the_oldest_go_at_KeepFiles_and_only_the_selected_connection_is_in_them(string engine)
    {
        await using var upstream = TestServer.Echo();
        using var dir = new TempDirectory();
        var captures = Path.Combine(dir.Path, "captures");
        var file = Path.Combine(dir.Path, "appsettings.json");
        await File.WriteAllTextAsync(file, Config(engine, upstream.Address,
            $"{{ \"Directory\": \"{Json(captures)}\", \"Source\": \"127.0.0.3\", \"RotateMB\": \"0.05\", \"KeepFiles\": \"3\" }}"), TestContext.Current.CancellationToken);
        var proxy = await TestProxy.StartFromFileAsync(file);
        Socket? onThree = null, onTwo = null;
        ProxiedConnection selected;
        try
        {
            using var first = await SocketExtensions.ConnectAsync(proxy.Endpoint());
            using var second = await SocketExtensions.ConnectAsync(proxy.Endpoint());
            await first.EchoAsync(new byte[100]);
            await second.EchoAsync(new byte[100]);
            var live = await Poll.UntilAsync(() => proxy.Connections.Snapshot(), c => c.Count == 2, "both connections registered");
            selected = live.Single(c => c.Source.Address.Equals(IPAddress.Parse("127.0.0.3")));
            (onThree, onTwo) = selected.Client.Port == ((IPEndPoint)first.LocalEndPoint!).Port ? (first, second) : (second, first);

            // About 40 KB of pcapng a round (10 KB each way on each leg): some 25 files of 50 KB.
            var payload = new byte[10_000];
            for (int round = 0; round < 25; round++)
            {
                Random.Shared.NextBytes(payload);
                await onThree.EchoAsync(payload);
                await onTwo.EchoAsync(payload);
            }

            onThree.Shutdown(SocketShutdown.Send);
            onTwo.Shutdown(SocketShutdown.Send);
            Assert.Equal(0, await onThree.ReceiveAsync(new byte[1]));
            Assert.Equal(0, await onTwo.ReceiveAsync(new byte[1]));

            // Both legs' FINs both ways reach the files (each flushed as the capture goes); a file
            // begun after one side's FIN writes it again behind its handshake.
            int Fins() => Directory.GetFiles(captures, "*.pcapng").SelectMany(f => Packet.ReadAll(ReadIfThere(f))).Where(p => p.Fin).Select(p => (p.From, p.To)).Distinct().Count();
            await Poll.UntilAsync(Fins, n => n == 4, "4 FINs in the files");
        }
        finally
        {
            // Stopping closes the last file whole.
            await proxy.DisposeAsync();
        }

        var files = Directory.GetFiles(captures, "*.pcapng").Order(StringComparer.Ordinal).ToList();
        Assert.Equal(3, files.Count);
        int Sequence(string path) => int.Parse(Path.GetFileNameWithoutExtension(path).Split('-')[^1], System.Globalization.CultureInfo.InvariantCulture);
        Assert.True(Sequence(files[0]) >= 10, $"the files kept are {string.Join(", ", files.Select(Path.GetFileName))}: too few were written to roll over");
        Assert.Equal([Sequence(files[0]), Sequence(files[0]) + 1, Sequence(files[0]) + 2], files.Select(Sequence));

        foreach (var path in files)
        {
            var bytes = await File.ReadAllBytesAsync(path, TestContext.Current.CancellationToken);
            Assert.True(bytes.Length >= 50 * 1024 || path == files[^1], $"{Path.GetFileName(path)} holds {bytes.Length} bytes, less than RotateMB");
            Assert.Empty(await Tshark.ProblemsAsync(path));
            var packets = Packet.ReadAll(bytes);
            Assert.NotEmpty(packets);
            Assert.All(packets, p => Assert.True(
                p.Between(selected.Client, selected.Listener) || p.Between(selected.Source, selected.Upstream),
                $"{Path.GetFileName(path)}: {p.From} → {p.To} is not the connection from 127.0.0.3"));

            // Each file introduces each leg it holds with a handshake of its own.
            Assert.Equal(packets.Select(p => p.Interface).Distinct().Count(), packets.Count(p => p.Syn && (p.Flags & 0x10) == 0));
            Assert.Contains(packets, p => p.Comment?.Contains("open before this file began", StringComparison.Ordinal) == true);
        }

        // The files end with both legs closed both ways (a leg that ended in one file is not in the next).
        Assert.Equal(4, files.SelectMany(f => Packet.ReadAll(File.ReadAllBytes(f))).Where(p => p.Fin).Select(p => (p.From, p.To)).Distinct().Count());
    }

    [Fact]
    public async Task A_reload_turns_capture_files_on_changes_them_and_turns_them_off_and_a_directory_that_cannot_be_written_is_rejected()
    {
        await using var upstream = TestServer.Echo();
        using var dir = new TempDirectory();
        var first = Path.Combine(dir.Path, "first");
        var second = Path.Combine(dir.Path, "second");
        var blocker = Path.Combine(dir.Path, "a-file");
        await File.WriteAllTextAsync(blocker, "not a directory", TestContext.Current.CancellationToken);
        var file = Path.Combine(dir.Path, "appsettings.json");
        await File.WriteAllTextAsync(file, Config("auto", upstream.Address, null), TestContext.Current.CancellationToken);
        await using var proxy = await TestProxy.StartFromFileAsync(file);
        var files = proxy.Services.GetRequiredService<CaptureFiles>();
        var hub = proxy.Services.GetRequiredService<CaptureHub>();
        Assert.Null(files.Session);
        Assert.Equal(0, hub.Running);

        using var client = await SocketExtensions.ConnectAsync(proxy.Endpoint());
        await client.EchoAsync(new byte[1000]);

        // On: the connection already open is captured from now on.
        await File.WriteAllTextAsync(file, Config("auto", upstream.Address, $"{{ \"Directory\": \"{Json(first)}\" }}"), TestContext.Current.CancellationToken);
        await proxy.Logs.WaitForAsync(Prompt, "Capture files: writing to", first);
        await client.EchoAsync(new byte[1000]);
        var session = files.Session!;
        await Poll.UntilAsync(() => session.Packets >= 4, () => $"the echo in the first directory; {session.Packets} packets");

        // A directory under a regular file cannot be made: the edit is rejected, the running capture goes on.
        await File.WriteAllTextAsync(file, Config("auto", upstream.Address, $"{{ \"Directory\": \"{Json(Path.Combine(blocker, "captures"))}\" }}"), TestContext.Current.CancellationToken);
        var rejected = await proxy.Logs.WaitForAsync(Prompt, "Reload rejected", "Capture:Directory");
        Assert.Contains("cannot be made or written", rejected, StringComparison.Ordinal);
        Assert.Same(session, files.Session);
        long before = session.Packets;
        await client.EchoAsync(new byte[1000]);
        await Poll.UntilAsync(() => session.Packets > before, "the capture to go on after the rejected edit");

        // Changed: the first capture closes its file and a new one writes to the second directory, legs=upstream only.
        await File.WriteAllTextAsync(file, Config("auto", upstream.Address, $"{{ \"Directory\": \"{Json(second)}\", \"Legs\": \"upstream\" }}"), TestContext.Current.CancellationToken);
        await proxy.Logs.WaitForAsync(Prompt, "Capture files: writing to", second);
        Assert.True(session.IsFinished);
        var next = files.Session!;
        Assert.NotSame(session, next);
        await client.EchoAsync(new byte[1000]);
        await Poll.UntilAsync(() => next.Packets >= 4, () => $"the echo in the second directory; {next.Packets} packets");

        // Off: the section removed.
        await File.WriteAllTextAsync(file, Config("auto", upstream.Address, null), TestContext.Current.CancellationToken);
        await proxy.Logs.WaitForAsync(Prompt, "Capture files: stopped writing to", second);
        Assert.Null(files.Session);
        Assert.True(next.IsFinished);
        await Poll.UntilAsync(() => hub.Running, n => n == 0, "no capture left running");
        await client.EchoAsync(new byte[1000]);

        var firstFile = Assert.Single(Directory.GetFiles(first, "*.pcapng"));
        var secondFile = Assert.Single(Directory.GetFiles(second, "*.pcapng"));
        Assert.Empty(await Tshark.ProblemsAsync(firstFile));
        Assert.Empty(await Tshark.ProblemsAsync(secondFile));
        var firstPackets = Packet.ReadAll(await File.ReadAllBytesAsync(firstFile, TestContext.Current.CancellationToken));
        var secondPackets = Packet.ReadAll(await File.ReadAllBytesAsync(secondFile, TestContext.Current.CancellationToken));
        Assert.Equal(2, firstPackets.Select(p => p.Interface).Distinct().Count());
        Assert.Single(secondPackets.Select(p => p.Interface).Distinct());
        Assert.All(secondPackets, p => Assert.True(p.From.Address.Equals(IPAddress.Parse("127.0.0.2")) || p.To.Address.Equals(IPAddress.Parse("127.0.0.2")) ||
            p.From.Address.Equals(IPAddress.Parse("127.0.0.3")) || p.To.Address.Equals(IPAddress.Parse("127.0.0.3")), $"{p.From} → {p.To} is not the upstream leg"));
    }

    [Fact]
    public async Task A_directory_that_cannot_be_made_is_one_line_at_startup_and_the_bounds_are_checked()
    {
        using var dir = new TempDirectory();
        var blocker = Path.Combine(dir.Path, "a-file");
        await File.WriteAllTextAsync(blocker, "not a directory", TestContext.Current.CancellationToken);
        var config = new ProxyConfig
        {
            Routes = [new RouteConfig { Name = "r", Listen = "127.0.0.1:0", Upstream = "127.0.0.1:9", Source = "127.0.0.2" }],
            Capture = new CaptureConfig { Directory = Path.Combine(blocker, "captures"), RotateMB = "0", KeepFiles = "none", Legs = "sideways", Route = "nope", UnknownFields = ["Colour"] },
        };
        var result = await new ConfigValidator(new SourceAddressProbe()).ValidateAsync(config, CancellationToken.None);
        Assert.False(result.IsValid);
        var lines = result.Errors.Select(e => e.ToString()).ToList();
        Assert.Contains(lines, l => l.Contains("Capture:RotateMB", StringComparison.Ordinal) && l.Contains("'0'", StringComparison.Ordinal));
        Assert.Contains(lines, l => l.Contains("Capture:KeepFiles", StringComparison.Ordinal) && l.Contains("'none'", StringComparison.Ordinal));
        Assert.Contains(lines, l => l.Contains("Capture:Legs", StringComparison.Ordinal) && l.Contains("'sideways'", StringComparison.Ordinal));
        Assert.Contains(lines, l => l.Contains("Capture:Route", StringComparison.Ordinal) && l.Contains("'nope'", StringComparison.Ordinal));
        Assert.Contains(lines, l => l.Contains("Capture:Colour", StringComparison.Ordinal));

        // The directory alone wrong: one line naming it.
        config = config with { Capture = new CaptureConfig { Directory = Path.Combine(blocker, "captures") } };
        result = await new ConfigValidator(new SourceAddressProbe()).ValidateAsync(config, CancellationToken.None);
        var line = Assert.Single(result.Errors).ToString();
        Assert.Contains("Capture:Directory", line, StringComparison.Ordinal);
        Assert.Contains("cannot be made or written", line, StringComparison.Ordinal);
        Assert.DoesNotContain('\n', line);

        // Off unless configured; a Directory made when missing.
        config = config with { Capture = new CaptureConfig { Directory = Path.Combine(dir.Path, "made", "here") } };
        result = await new ConfigValidator(new SourceAddressProbe()).ValidateAsync(config, CancellationToken.None);
        Assert.True(result.IsValid, string.Join("\n", result.Errors));
        Assert.True(Directory.Exists(Path.Combine(dir.Path, "made", "here")));
        Assert.Equal(100L * 1024 * 1024, result.Model!.Capture!.RotateBytes);
        Assert.Equal(10, result.Model.Capture.KeepFiles);
        Assert.Equal("both", result.Model.Capture.Legs);
        result = await new ConfigValidator(new SourceAddressProbe()).ValidateAsync(config with { Capture = null }, CancellationToken.None);
        Assert.Null(result.Model!.Capture);
    }

    /// <summary>A file's bytes; none when it was deleted meanwhile (rolled out of the set).</summary>
    private static byte[] ReadIfThere(string path)
    {
        try
        {
            return File.ReadAllBytes(path);
        }
        catch (FileNotFoundException)
        {
            return [];
        }
    }
}
