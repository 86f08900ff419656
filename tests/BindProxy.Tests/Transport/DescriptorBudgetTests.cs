using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Sockets;
using BindProxy.Configuration;
using BindProxy.Forwarding;
using BindProxy.Tests.Admin;
using BindProxy.Tests.Infrastructure;
using BindProxy.Transport;
using BindProxy.Transport.Linux;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace BindProxy.Tests.Transport;

/// <summary>The open-files limit shared out between connections: clients past it are refused at once, and the process lives on.</summary>
public sealed class DescriptorBudgetTests
{
    private static readonly TimeSpan Prompt = TimeSpan.FromSeconds(10);

    [Fact]
    public void A_burst_of_refusals_is_logged_as_its_first_line_then_one_line_with_the_rest()
    {
        var time = new Microsoft.Extensions.Time.Testing.FakeTimeProvider();
        using var logs = new LogCollector();
        using var budget = new DescriptorBudget(DescriptorBudget.Reserve + 2, 0, new Logger<DescriptorBudget>(new LoggerFactory([logs])), time: time);
        var client = new IPEndPoint(IPAddress.Loopback, 40000);

        for (int i = 0; i < 1631; i++)
        {
            budget.Refuse("r", client);
        }

        var first = Assert.Single(logs.Messages);
        Assert.Contains("r: refused 127.0.0.1:40000", first, StringComparison.Ordinal);
        Assert.Contains("(1 refused since the last such line", first, StringComparison.Ordinal);

        // The interval that began with that line ends: the other 1630 are said once.
        time.Advance(TimeSpan.FromSeconds(10));
        Assert.Equal(2, logs.Messages.Count());
        Assert.Contains("r: 1630 more client(s) refused in the last 10 s for want of descriptors", logs.Messages.Last(), StringComparison.Ordinal);

        // Nothing refused since: nothing more to say.
        time.Advance(TimeSpan.FromSeconds(30));
        Assert.Equal(2, logs.Messages.Count());

        // A refusal later starts over with a line of its own.
        budget.Refuse("r", client);
        Assert.Equal(3, logs.Messages.Count());
        Assert.Contains("(1 refused since the last such line", logs.Messages.Last(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task Clients_past_the_budget_are_reset_at_once_counted_and_logged_once_and_served_again_when_others_leave()
    {
        const string Route = "budget";
        await using var upstream = TestServer.Echo();

        // Room for the listener and three connections: 64 reserved + 1 + 3 × 2.
        const int Limit = DescriptorBudget.Reserve + 1 + (3 * DescriptorBudget.PerConnection);
        await using var admin = await AdminProxy.StartAsync(
            services => services.AddSingleton(sp => new DescriptorBudget(Limit, 0, sp.GetRequiredService<ILogger<DescriptorBudget>>())),
            AdminProxy.Route(Route, upstream));
        var proxy = admin.Proxy;

        var held = new List<Socket>();
        for (int i = 0; i < 3; i++)
        {
            var client = await SocketExtensions.ConnectAsync(proxy.Endpoint(Route));
            await client.SendAsync(new[] { (byte)i });
            Assert.Equal((byte)i, (await client.ReadExactlyAsync(1, Prompt))[0]);
            held.Add(client);
        }

        for (int i = 0; i < 2; i++)
        {
            var started = Stopwatch.GetTimestamp();
            Assert.Equal(SocketError.ConnectionReset, await SocketExtensions.ConnectAndWaitForCloseAsync(proxy.Endpoint(Route), Prompt));
            Assert.True(Stopwatch.GetElapsedTime(started) < TimeSpan.FromSeconds(2), "the refusal was not at once");
        }

        var line = await proxy.Logs.WaitForAsync(Prompt, $"{Route}: refused 127.0.0.1:", $"open-files limit {Limit}", "ulimit -n");
        Assert.Contains("about 3 proxied connections", line, StringComparison.Ordinal);
        Assert.Single(proxy.Logs.Messages, m => m.Contains("open-files limit", StringComparison.Ordinal) && m.Contains("refused", StringComparison.Ordinal));
        await MetricsTests.WaitForMetricAsync(admin, "bindproxy_connections_rejected_total", 2, ("route", Route), ("reason", "descriptor_limit"));
        Assert.Equal(3, proxy.CountOf(Route));

        // One leaves: the next client is served.
        held[0].Shutdown(SocketShutdown.Send);
        Assert.Empty(await held[0].ReadToEndAsync(Prompt));
        var budget = proxy.Services.GetRequiredService<DescriptorBudget>();
        await Poll.UntilAsync(() => budget.InUse <= Limit - DescriptorBudget.Reserve - DescriptorBudget.PerConnection,
            () => $"the connection's descriptors given back; {budget.InUse} in use");

        using var next = await SocketExtensions.ConnectAsync(proxy.Endpoint(Route));
        await next.SendAsync(new byte[] { 9 });
        Assert.Equal(9, (await next.ReadExactlyAsync(1, Prompt))[0]);
        held.ForEach(c => c.Dispose());
    }

    [Fact]
    [System.Runtime.Versioning.SupportedOSPlatform("linux")]
    public async Task A_listener_gives_up_its_spare_descriptor_to_reset_a_waiting_client_and_takes_it_back()
    {
        Assert.SkipUnless(BindProxy.Configuration.EngineSettings.RelayRuns, "the spare descriptor is for accept4 on Linux");
        using var listener = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        listener.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        listener.Listen();
        BindProxy.Transport.Linux.RawSocket.SetNonBlocking(listener.SafeHandle);
        using var spare = new BindProxy.Transport.Linux.SpareDescriptor();

        Assert.False(spare.TryRefuseOne(listener.SafeHandle, out _)); // nobody waiting

        using var client = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        await client.ConnectAsync(listener.LocalEndPoint!, TestContext.Current.CancellationToken);
        Assert.True(spare.TryRefuseOne(listener.SafeHandle, out var refused));
        Assert.Equal(client.LocalEndPoint, refused);
        Assert.Equal(SocketError.ConnectionReset, await client.WaitForCloseAsync(Prompt));

        // It has its descriptor again: another one can be refused the same way.
        using var second = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        await second.ConnectAsync(listener.LocalEndPoint!, TestContext.Current.CancellationToken);
        Assert.True(spare.TryRefuseOne(listener.SafeHandle, out _));
    }

    /// <summary>
    /// The real executable under a low open-files limit, holding more clients than its budget: it
    /// refuses the rest at once and stays alive with its table full, and serves again once they leave.
    /// </summary>
    [Fact]
    public async Task A_proxy_process_holding_more_clients_than_its_limit_allows_stays_alive_refusing_and_serves_again()
    {
        Assert.SkipUnless(OperatingSystem.IsLinux(), "sets the child's limit with prlimit and reads /proc");
        var prlimit = ExternalTool.Require("prlimit");
        await using var upstream = TestServer.Echo();
        const int Limit = 400;
        var dir = Path.Combine(Path.GetTempPath(), "bindproxy-budget-" + Guid.NewGuid().ToString("n"));
        Directory.CreateDirectory(dir);
        await File.WriteAllTextAsync(Path.Combine(dir, "appsettings.json"),
            """{ "Serilog": { "MinimumLevel": { "Default": "Warning", "Override": { "BindProxy": "Information" } }, "WriteTo": [ { "Name": "Console", "Args": { "outputTemplate": "{Level:u3} {Message:lj}{NewLine}{Exception}" } } ] } }""");
        await using var proxy = ProxyProcess.StartWithLimit(prlimit, Limit, dir,
            "--listen", "127.0.0.1:0", "--upstream", upstream.Address, "--source", "127.0.0.2", "--admin", "off");
        var endpoint = await proxy.ListeningAsyncAny(TimeSpan.FromSeconds(30));
        var capacity = await proxy.WaitForLineAsync("Open-files limit 400: room for ", Prompt);
        int room = int.Parse(capacity.Split("room for ")[1].Split(' ')[0], CultureInfo.InvariantCulture);
        Assert.InRange(room, 50, Limit / 2);

        // Ask for more than fits; every one that fits is served, every other one is reset at once.
        var held = new List<Socket>();
        int refused = 0;
        try
        {
            for (int i = 0; i < room + 60; i++)
            {
                Socket? client = null;
                try
                {
                    client = await SocketExtensions.ConnectAsync(endpoint);
                    await client.SendAsync(new[] { (byte)i });
                    Assert.Equal((byte)i, (await client.ReadExactlyAsync(1, Prompt))[0]);
                    held.Add(client);
                }
                catch (SocketException e) when (e.SocketErrorCode == SocketError.ConnectionReset)
                {
                    refused++;
                    client?.Dispose();
                }
            }

            // Assemblies the first connections load take descriptors too: the room may shrink a little.
            Assert.InRange(held.Count, room - 20, room);
            Assert.Equal(room + 60, held.Count + refused);
            await proxy.WaitForLineAsync("refused 127.0.0.1:", Prompt);

            // The table stays full for a while: the process lives, under its limit, refusing. Time
            // passing with nothing changing is what is tested: five seconds in all.
            for (int i = 0; i < 5; i++)
            {
                Assert.False(await Poll.SteadyAsync(() => proxy.HasExited, TimeSpan.FromSeconds(1), "the proxy to stay up with its table full"),
                    "the proxy died with its table full:\n" + string.Join("\n", proxy.Lines));
                Assert.InRange(Directory.GetFileSystemEntries($"/proc/{proxy.Id}/fd").Length, room * 2, Limit - 8);
                Assert.Equal(SocketError.ConnectionReset, await SocketExtensions.ConnectAndWaitForCloseAsync(endpoint, Prompt));
            }

            // They leave: new clients are served again.
            held.ForEach(c => c.Dispose());
            held.Clear();
            await Poll.UntilAsync(async () =>
            {
                try
                {
                    using var client = await SocketExtensions.ConnectAsync(endpoint);
                    await client.SendAsync(new byte[] { 42 });
                    return (await client.ReadExactlyAsync(1, Prompt))[0] == 42;
                }
                catch (SocketException)
                {
                    return false; // still refused while the others' descriptors are given back
                }
            }, "a client to be served after the others left");
            Assert.DoesNotContain(proxy.Lines, l => l.Contains("Out of memory", StringComparison.Ordinal) || l.StartsWith("ERR ", StringComparison.Ordinal) || l.StartsWith("FTL ", StringComparison.Ordinal));
        }
        finally
        {
            held.ForEach(c => c.Dispose());
        }

        proxy.Terminate();
        Assert.Equal(0, await proxy.WaitForExitAsync(TimeSpan.FromSeconds(30)));
        Directory.Delete(dir, recursive: true);
    }
}
