using System.Reflection;
using System.Text.Json;
using BindProxy.Configuration;
using BindProxy.Faults;
using BindProxy.Forwarding;
using BindProxy.Tests.Infrastructure;
using Microsoft.Extensions.DependencyInjection;

namespace BindProxy.Tests.Hosting;

/// <summary>
/// Every field a route can set, edited in the file under a running proxy: the reload names the
/// change and new connections are served with it, or — for the few fields that wait for a
/// restart — the log says so by the field's name. The fields are found by reflection over
/// <see cref="RouteConfig"/>, so a field added there without a way to change it fails here.
/// </summary>
public sealed class RouteFieldReloadTests
{
    private static readonly TimeSpan Prompt = TimeSpan.FromSeconds(15);

    /// <summary>One way to edit a field and see the edit served.</summary>
    /// <param name="Protocol">The route's protocol while the field is edited.</param>
    /// <param name="Base">Other fields the route needs for this one to apply (e.g. Assign for ClientIds).</param>
    /// <param name="Before">The field's value before the edit; null: not set.</param>
    /// <param name="After">The value written by the edit (a string, or a map for ClientIds).</param>
    /// <param name="Served">What the serving route model shows of the field; null: the field waits for a restart.</param>
    /// <param name="InNamespace">The edit installs netfilter rules: it is made under a proxy process in a network namespace of its own.</param>
    private sealed record Edit(string Protocol, Dictionary<string, object> Base, string? Before, object After, Func<RouteModel, TestProxy, object?>? Served, bool InNamespace = false);

    private static readonly Dictionary<string, object> None = [];

    private static readonly Lazy<TestCertificates> Certificates = new(() => new TestCertificates());

    private static readonly Dictionary<string, Edit> Edits = new()
    {
        ["Listen"] = new("Tcp", None, "127.0.0.1:0", "127.0.0.3:0",
            (route, proxy) => string.Join(",", proxy.Endpoints("r").Select(e => e.Address)) + " " + route.Listen.Text),
        ["Upstream"] = new("Tcp", None, "127.0.0.1:9", "127.0.0.1:10", (route, _) => route.Upstream.Text),
        ["Intercept"] = new("Tcp", None, null, new Dictionary<string, string> { ["Ports"] = "9", ["Uid"] = "65534" }, Served: null, InNamespace: true),
        ["Source"] = new("Tcp", None, "127.0.0.2", "127.0.0.3", (route, _) => route.Sources.Addresses.ToString()),
        ["Protocol"] = new("Tcp", None, "Tcp", "Kafka", (route, _) => route.Protocol),
        ["ConnectTimeout"] = new("Tcp", None, "00:00:05", "00:00:07", (route, _) => route.ConnectTimeout),
        ["IdleTimeout"] = new("Tcp", None, null, "00:01:00", (route, _) => route.IdleTimeout),
        ["MaxConnections"] = new("Tcp", None, null, "7", (route, _) => route.MaxConnections),
        ["MaxConnectionsPerClient"] = new("Tcp", None, null, "3", (route, _) => route.MaxConnectionsPerClient),
        ["Assign"] = new("Tcp", None, null, "client-address", (route, _) => route.Assignment.Policy),
        ["ClientIds"] = new("Kafka", new() { ["Assign"] = "kafka-client-id", ["Source"] = "127.0.0.2-127.0.0.5" }, null,
            new Dictionary<string, string> { ["billing"] = "127.0.0.4" },
            (route, _) => string.Join(",", route.Assignment.ClientIds.Select(kv => $"{kv.Key}={kv.Value}"))),
        ["WhenExhausted"] = new("Tcp", new() { ["Assign"] = "client-address" }, null, "refuse", (route, _) => route.Assignment.WhenExhausted),
        ["AssignmentIdleTimeout"] = new("Tcp", new() { ["Assign"] = "client-address" }, "00:01:00", "00:02:00", (route, _) => route.Assignment.IdleTimeout),
        ["BrokerPorts"] = new("Kafka", None, null, "19193-19194", (route, _) => route.Kafka!.BrokerPorts is { } ports ? $"{ports.First}-{ports.Last}" : null),
        ["AdvertisedHost"] = new("Kafka", None, null, "proxy.example", (route, _) => route.Kafka!.AdvertisedHost),
        ["AllowedBrokers"] = new("Kafka", None, null, "127.0.0.0/8", (route, _) => route.Kafka!.AllowedBrokers?.ToString()),
        ["FrameTimeout"] = new("Kafka", None, null, "00:00:05", (route, _) => route.Kafka!.FrameTimeout),
        ["MaxFrameSize"] = new("Kafka", None, null, "2048", (route, _) => route.Kafka!.MaxFrameSize),
        ["DecodeBodies"] = new("Kafka", None, null, "always", (route, _) => route.Kafka!.DecodeBodiesAlways ? "always" : "watched"),
        ["Tls"] = new("Tcp", None, null, new Dictionary<string, string> { ["ServerName"] = "kafka.example" },
            (route, _) => route.Tls is { ServerName: { } name } ? $"ServerName={name}" : null),
        ["ListenTls"] = new("Tcp", None, null, new Dictionary<string, string> { ["CertificateFile"] = Certificates.Value.Combined("server") },
            (route, _) => route.ListenTls is { } listen ? $"CertificateFile={listen.CertificateFile}" : null),
        ["XForwarded"] = new("Http", None, null, "false", (route, _) => route.Http!.XForwarded),
        ["RequestTimeout"] = new("Http", None, null, "00:00:09", (route, _) => route.Http!.RequestTimeout),
        ["Faults"] = new("Tcp", None, null, JsonDocument.Parse("""[{"attributes":{"latency":100},"name":"slow","type":"latency"}]""").RootElement,
            (route, proxy) => string.Join(",", proxy.Services.GetRequiredService<FaultTable>().Find(route.Name)?.Toxics.Select(t => $"{t.Name}: {t.Describe()}") ?? [])),
    };

    /// <summary>Every property of <see cref="RouteConfig"/> a configuration file can set.</summary>
    public static TheoryData<string> Fields()
    {
        string[] notFields = [nameof(RouteConfig.Name), nameof(RouteConfig.UnknownFields), nameof(RouteConfig.MisshapenFields)];
        return [.. typeof(RouteConfig).GetProperties(BindingFlags.Public | BindingFlags.Instance)
            .Where(p => p.CanWrite && !notFields.Contains(p.Name))
            .Select(p => p.Name)];
    }

    [Fact]
    public void Every_settable_route_property_is_a_field_of_the_table()
    {
        Assert.Equal(Fields().Select(row => (string)row.Data), RouteConfig.Fields.Names);
    }

    [Theory]
    [MemberData(nameof(Fields))]
    public async Task An_edited_field_is_applied_by_reload_or_named_as_waiting_for_a_restart(string name)
    {
        Assert.True(Edits.TryGetValue(name, out var edit), $"RouteConfig.{name} has no edit in this test: add how to change it and how a reload shows it served");
        var field = RouteConfig.Fields.Find(name);
        Assert.NotNull(field);
        if (edit.InNamespace)
        {
            await InterceptIsAppliedByReloadAsync(field, edit);
            return;
        }

        var file = Path.Combine(Path.GetTempPath(), $"bindproxy-field-{name}-{Guid.NewGuid():n}.json");
        await File.WriteAllTextAsync(file, Config(name, edit, edit.Before), TestContext.Current.CancellationToken);
        try
        {
            await using var proxy = await TestProxy.StartFromFileAsync(file);
            var routes = proxy.Services.GetRequiredService<RouteTable>();
            Assert.True(routes.TryFind("r", out var before));
            var servedBefore = edit.Served?.Invoke(before, proxy);

            await File.WriteAllTextAsync(file, Config(name, edit, edit.After), TestContext.Current.CancellationToken);
            var line = await proxy.Logs.WaitForAsync(Prompt, "Reload: route r changed: ", $"{name} ");
            Assert.Contains($"{name} {Written(field, edit.Before) ?? "(default)"} → {Written(field, edit.After)}", line, StringComparison.Ordinal);

            if (edit.Served is null)
            {
                Assert.Equal(FieldReload.Restart, field.Reload);
                await proxy.Logs.WaitForAsync(Prompt, "Reload: route r: ", $"{name} takes effect at the next restart");
                return;
            }

            Assert.True(routes.TryFind("r", out var after));
            var served = edit.Served(after, proxy);
            Assert.NotEqual(servedBefore, served);
            Assert.Contains(Parsed(edit.After), served?.ToString() ?? "", StringComparison.OrdinalIgnoreCase);
            Assert.DoesNotContain(proxy.Logs.Messages, m => m.Contains("takes effect at the next restart", StringComparison.Ordinal));
        }
        finally
        {
            File.Delete(file);
        }
    }

    /// <summary>
    /// Intercept, added to a running route by an edit: the reload names the change, the rule is in
    /// the proxy's nft table, and a connection of the selected user reaches the route (which
    /// connects to its original destination, 127.0.0.1:9, where nothing listens). The route
    /// drops its Upstream in the same edit, since an intercepting route has none.
    /// </summary>
    private static async Task InterceptIsAppliedByReloadAsync(ConfigField field, Edit edit)
    {
        using var run = Interception.NamespaceRun.Require("setpriv");
        var after = (Dictionary<string, string>)edit.After;
        string File(object? intercept) => JsonSerializer.Serialize(new
        {
            BindProxy = new
            {
                Routes = new Dictionary<string, object>
                {
                    ["r"] = intercept is null
                        ? new Dictionary<string, object> { ["Listen"] = "127.0.0.1:0", ["Upstream"] = "127.0.0.1:9", ["Source"] = "127.0.0.2", ["Protocol"] = edit.Protocol }
                        : new Dictionary<string, object> { ["Listen"] = "127.0.0.1:0", ["Source"] = "127.0.0.2", ["Protocol"] = edit.Protocol, [field.Name] = intercept },
                },
            },
        });
        await System.IO.File.WriteAllTextAsync(Path.Combine(run.Directory, "before.json"), File(null), TestContext.Current.CancellationToken);
        await System.IO.File.WriteAllTextAsync(Path.Combine(run.Directory, "after.json"), File(after), TestContext.Current.CancellationToken);
        var (exitCode, stdout, stderr) = await run.RunAsync($$"""
            cp before.json proxy.json
            $PROXY --config proxy.json --admin off > proxy.log 2>&1 & proxy=$!
            trap 'kill $proxy 2>/dev/null' EXIT
            wait_for proxy.log 'Route r listening on' || exit 20
            cp after.json proxy.json.new; mv proxy.json.new proxy.json
            wait_for proxy.log 'Route r: table inet' || exit 21
            echo "rule: [$(nft list table inet bindproxy_$proxy | grep -o 'meta skuid [0-9a-z]* tcp dport @ports_r redirect to :[0-9]*')]"
            echo "ports: [$(nft list set inet bindproxy_$proxy ports_r | grep -o 'elements = { [^}]* }')]"
            setpriv --reuid {{after["Uid"]}} --regid {{after["Uid"]}} --clear-groups bash -c 'exec 3<>/dev/tcp/127.0.0.1/{{after["Ports"]}}; read -r -t 5 _ <&3'
            wait_for proxy.log 'connect refused: 127.0.0.1:{{after["Ports"]}}' || exit 22
            """, Prompt * 4);

        var log = run.Read("proxy.log");
        Assert.True(exitCode == 0, $"script failed ({exitCode}):\n{stdout}\n{stderr}\n{log}");
        Assert.Contains($"{field.Name} {Written(field, edit.Before) ?? "(default)"} → {Written(field, edit.After)}", log, StringComparison.Ordinal);
        Assert.Contains($"rule: [meta skuid {after["Uid"]} tcp dport @ports_r redirect to :", stdout, StringComparison.Ordinal);
        Assert.Contains($"ports: [elements = {{ {after["Ports"]} }}]", stdout, StringComparison.Ordinal);
        Assert.DoesNotContain("takes effect at the next restart", log, StringComparison.Ordinal);
    }

    /// <summary>The text a served value shows for what was written (a duration as written, a map's first entry).</summary>
    private static string Parsed(object written) => written switch
    {
        Dictionary<string, string> map => string.Join(",", map.Select(kv => $"{kv.Key}={kv.Value}")),
        JsonElement toxics => string.Join(",", toxics.EnumerateArray().Select(t => t.GetProperty("name").GetString())),
        "client-address" => "ClientAddress",
        var text => (string)text,
    };

    /// <summary>A value as the reload's diff line shows it, through the field table.</summary>
    private static string? Written(ConfigField field, object? value) =>
        field.Text(field.With(new RouteConfig { Name = "r" }, value switch
        {
            Dictionary<string, string> map => map.ToDictionary(kv => kv.Key, kv => (string?)kv.Value),
            JsonElement json => json.GetRawText(), // read back from the file as this JSON text, its keys in order
            _ => value,
        }));

    /// <summary>A file with one route "r" in front of a port nothing answers on (no connection is made).</summary>
    private static string Config(string name, Edit edit, object? value)
    {
        var route = new Dictionary<string, object>
        {
            ["Listen"] = "127.0.0.1:0",
            ["Upstream"] = "127.0.0.1:9",
            ["Source"] = "127.0.0.2",
            ["Protocol"] = edit.Protocol,
        };
        foreach (var (key, extra) in edit.Base)
        {
            route[key] = extra;
        }

        if (value is null)
        {
            route.Remove(name);
        }
        else
        {
            route[name] = value;
        }

        return JsonSerializer.Serialize(new { BindProxy = new { Routes = new Dictionary<string, object> { ["r"] = route } } });
    }
}
