using System.Globalization;
using BindProxy.Addressing;
using BindProxy.Configuration;
using BindProxy.Interception;
using BindProxy.Wireshark;
using Microsoft.Extensions.Configuration;

namespace BindProxy.Tests.Configuration;

/// <summary>
/// A route's <c>Intercept</c> section as the validator reads it, with this machine's own answers
/// (its cgroup v2 hierarchy, the process's uid and privileges): every mistake is reported at once,
/// naming the route and the field.
/// </summary>
public sealed class InterceptConfigTests
{
    private static async Task<ValidationResult> ValidateAsync(Dictionary<string, string?> keys)
    {
        var configuration = new ConfigurationBuilder().AddInMemoryCollection(keys).Build();
        return await new ConfigValidator(new SourceAddressProbe(), new InterceptionProbe()).ValidateAsync(ConfigReader.Read(configuration), CancellationToken.None);
    }

    private static async Task<IReadOnlyList<string>> ErrorsAsync(Dictionary<string, string?> keys) =>
        [.. (await ValidateAsync(keys)).Errors.Select(e => e.ToString())];

    /// <summary>A route "r" intercepting <paramref name="intercept"/> (keys under Intercept), listening where a redirect lands.</summary>
    private static Dictionary<string, string?> Route(string name, params (string Key, string Value)[] intercept)
    {
        var keys = new Dictionary<string, string?>
        {
            [$"BindProxy:Routes:{name}:Listen"] = "127.0.0.1:0",
            [$"BindProxy:Routes:{name}:Source"] = "127.0.0.7",
        };
        foreach (var (key, value) in intercept)
        {
            keys[$"BindProxy:Routes:{name}:Intercept:{key}"] = value;
        }

        return keys;
    }

    /// <summary>A uid that is not this process's.</summary>
    private static string OtherUid() => (InterceptionSupport.OwnUid() == 65534 ? 65533 : 65534).ToString(CultureInfo.InvariantCulture);

    private static void AssertHas(IReadOnlyList<string> errors, string expected) =>
        Assert.True(errors.Any(e => e.StartsWith(expected, StringComparison.Ordinal)), $"no error starting with\n  {expected}\nin\n  {string.Join("\n  ", errors)}");

    [Fact]
    public async Task A_route_that_intercepts_by_uid_needs_no_Upstream_and_connects_to_the_original_destination()
    {
        var result = await ValidateAsync(Route("r", ("Ports", "9092-9094,8081"), ("Uid", OtherUid())));
        if (new InterceptionProbe().Missing() is { Count: > 0 } missing)
        {
            // Everything but the machine's support was accepted.
            Assert.All(result.Errors, e => Assert.Equal("Intercept", e.Field));
            Infrastructure.ExternalTool.Unavailable($"validating an intercepting route needs what this process lacks: {string.Join("; ", missing)}");
        }

        Assert.True(result.IsValid, string.Join("\n", result.Errors));
        var route = Assert.Single(result.Model!.Routes);
        Assert.Equal(new InterceptSelector.Uid(int.Parse(OtherUid(), CultureInfo.InvariantCulture)), route.Intercept!.Selector);
        Assert.Equal("8081,9092-9094", route.Intercept.Ports.ToString());
        Assert.Equal("original destination (ports 8081,9092-9094)", route.Upstream.Text);
        Assert.Equal("ip.addr==127.0.0.7 && tcp.port in {8081,9092..9094}", route.WiresharkFilter);
    }

    [Fact]
    public async Task Every_mistake_in_intercepting_routes_is_reported_at_once_with_route_and_field()
    {
        var keys = new Dictionary<string, string?>();
        foreach (var route in new[]
        {
            Route("no-selector", ("Ports", "9092")),
            Route("own-uid", ("Ports", "9092"), ("Uid", InterceptionSupport.OwnUid()!.Value.ToString(CultureInfo.InvariantCulture))),
            Route("bad-ports", ("Ports", "9094-9092"), ("Uid", OtherUid())),
            Route("no-ports", ("Uid", OtherUid())),
            Route("both", ("Ports", "9092"), ("Uid", OtherUid()), ("Cgroup", "/sys/fs/cgroup")),
            Route("not-a-uid", ("Ports", "9092"), ("Uid", "kafka")),
            Route("typo", ("Ports", "9093"), ("Uid", OtherUid()), ("Prots", "9094")),
            Route("with-upstream", ("Ports", "9095"), ("Uid", OtherUid())),
            Route("elsewhere", ("Ports", "9096"), ("Uid", OtherUid())),
            Route("http", ("Ports", "9097"), ("Uid", OtherUid())),
            Route("broker-ports", ("Ports", "9098"), ("Uid", OtherUid())),
        })
        {
            foreach (var (key, value) in route)
            {
                keys[key] = value;
            }
        }

        keys["BindProxy:Routes:with-upstream:Upstream"] = "127.0.0.1:9095";
        keys["BindProxy:Routes:elsewhere:Listen"] = "127.0.0.5:0,[::1]:0";
        keys["BindProxy:Routes:http:Protocol"] = "Http";
        keys["BindProxy:Routes:broker-ports:Protocol"] = "Kafka";
        keys["BindProxy:Routes:broker-ports:BrokerPorts"] = "19093-19099";

        var errors = await ErrorsAsync(keys);
        AssertHas(errors, "route 'no-selector': Intercept: has no selector; give Cgroup (a cgroup v2 group, e.g. /sys/fs/cgroup/kafka-clients) or Uid (the user the clients run as). " +
            "Intercepting every process would redirect the proxy's own upstream connections, which go to the same ports, back into it");
        AssertHas(errors, $"route 'own-uid': Intercept:Uid: {InterceptionSupport.OwnUid()} is the proxy's own uid, so its upstream connections would be redirected back into it");
        AssertHas(errors, "route 'bad-ports': Intercept:Ports: '9094-9092' ends before it starts");
        AssertHas(errors, "route 'no-ports': Intercept:Ports: is missing; expected the destination ports to redirect, e.g. 9092-9094,8081");
        AssertHas(errors, "route 'both': Intercept: has both Cgroup and Uid; give one");
        AssertHas(errors, "route 'not-a-uid': Intercept:Uid: 'kafka' is not a user id; expected a whole number such as 1000");
        AssertHas(errors, "route 'typo': Intercept:Prots: unknown key; did you mean Ports?");
        AssertHas(errors, "route 'with-upstream': Upstream: an intercepting route connects each connection to its original destination; remove Upstream (or Intercept)");
        AssertHas(errors, "route 'elsewhere': Listen: 127.0.0.5:0: an intercepting route listens where redirected connections arrive at 127.0.0.1 and [::1]");
        AssertHas(errors, "route 'elsewhere': Listen: [::1]:0 would receive IPv6 connections, which cannot leave from the IPv4 Source 127.0.0.7");
        AssertHas(errors, "route 'http': Intercept: applies to Tcp and Kafka routes");
        AssertHas(errors, "route 'broker-ports': BrokerPorts: does not apply to an intercepting route");

        // An intercepting route is not asked for an Upstream.
        Assert.DoesNotContain(errors, e => e.Contains("Upstream: is missing", StringComparison.Ordinal));
    }

    [Fact]
    public async Task Without_a_selector_the_proxy_and_check_refuse_to_start_naming_the_route_and_field()
    {
        var dir = Cli.BindProxyCli.TempDir();
        await File.WriteAllTextAsync(Path.Combine(dir, "appsettings.json"), """
            { "BindProxy": { "Routes": { "kafka-clients": { "Listen": "127.0.0.1:0", "Source": "127.0.0.7", "Intercept": { "Ports": "9092-9094" } } } } }
            """, TestContext.Current.CancellationToken);

        foreach (var args in new[] { new[] { "--admin", "off" }, ["check"] })
        {
            var (exit, output, err) = await Cli.BindProxyCli.RunAsync(dir, args);
            Assert.True(exit == 1, $"{string.Join(' ', args)}: exit {exit}\n{output}\n{err}");
            Assert.Contains("route 'kafka-clients': Intercept: has no selector; give Cgroup", err, StringComparison.Ordinal);
            Assert.Contains("would redirect the proxy's own upstream connections", err, StringComparison.Ordinal);
            Assert.DoesNotContain("listening on", output + err, StringComparison.Ordinal);
            Assert.DoesNotContain((output + err).Split('\n'), line => line.StartsWith("   at ", StringComparison.Ordinal));
        }
    }

    [Fact]
    public async Task Intercept_written_as_a_value_says_an_object_is_expected()
    {
        var keys = Route("r");
        keys["BindProxy:Routes:r:Intercept"] = "9092";
        var errors = await ErrorsAsync(keys);
        AssertHas(errors, "route 'r': Intercept: expected an object of names and values, found the single value '9092'");
        Assert.DoesNotContain(errors, e => e.Contains("no selector", StringComparison.Ordinal));
    }

    [Fact]
    public async Task Two_routes_may_not_intercept_the_same_connections_nor_a_port_of_the_proxys_own()
    {
        var keys = Route("a", ("Ports", "9092-9094"), ("Uid", OtherUid()));
        foreach (var (key, value) in Route("b", ("Ports", "9094,19092"), ("Uid", OtherUid())))
        {
            keys[key] = value;
        }

        keys["BindProxy:Routes:plain:Listen"] = "127.0.0.1:19092";
        keys["BindProxy:Routes:plain:Upstream"] = "127.0.0.1:9000";
        keys["BindProxy:Routes:plain:Source"] = "127.0.0.2";

        var errors = await ErrorsAsync(keys);
        AssertHas(errors, $"route 'b': Intercept:Ports: route 'a' already intercepts uid {OtherUid()}'s connections to 9092-9094, which overlaps 9094,19092");
        AssertHas(errors, "route 'b': Intercept:Ports: 9094,19092 includes 19092, a listen port of route 'plain' of this proxy");
    }

    [Fact]
    public async Task A_cgroup_must_exist_in_the_cgroup_v2_hierarchy_and_must_not_hold_the_proxy()
    {
        var hierarchy = CgroupHierarchy.Find(out var why);
        if (hierarchy is null)
        {
            Infrastructure.ExternalTool.Unavailable($"this machine has no cgroup v2 hierarchy: {why}");
        }

        var missing = Path.Combine(hierarchy!.MountPoint, "bindproxy-test-" + Guid.NewGuid().ToString("n"));
        var keys = Route("missing", ("Ports", "9092"), ("Cgroup", missing));
        foreach (var (key, value) in Route("proxys-own", ("Ports", "9093"), ("Cgroup", hierarchy.MountPoint)))
        {
            keys[key] = value;
        }

        foreach (var (key, value) in Route("outside", ("Ports", "9094"), ("Cgroup", "/tmp")))
        {
            keys[key] = value;
        }

        var errors = await ErrorsAsync(keys);
        AssertHas(errors, $"route 'missing': Intercept:Cgroup: {missing} does not exist; create the group first (mkdir {missing})");
        AssertHas(errors, $"route 'proxys-own': Intercept:Cgroup: the proxy itself runs in {hierarchy.MountPoint}");
        AssertHas(errors, $"route 'outside': Intercept:Cgroup: '/tmp' is not in the cgroup v2 hierarchy, which is mounted at {hierarchy.MountPoint}");
    }

    [Fact]
    public void A_cgroup_path_resolves_to_its_directory_and_depth_and_a_path_in_the_hierarchys_own_terms_is_a_near_miss()
    {
        var mount = Path.Combine(Path.GetTempPath(), "bindproxy-cgroup-" + Guid.NewGuid().ToString("n"));
        Directory.CreateDirectory(Path.Combine(mount, "clients", "billing"));
        Directory.CreateDirectory(Path.Combine(mount, "proxy"));
        try
        {
            var hierarchy = new CgroupHierarchy(mount, "/", "/proxy");

            var billing = InterceptionProbe.Resolve(hierarchy, Path.Combine(mount, "clients", "billing") + "/", Directory.Exists, out var error);
            Assert.Equal(new InterceptSelector.Cgroup(Path.Combine(mount, "clients", "billing"), 2), billing);
            Assert.Equal("", error);

            Assert.Null(InterceptionProbe.Resolve(hierarchy, "/clients", Directory.Exists, out error));
            Assert.Equal($"'/clients' is not in the cgroup v2 hierarchy, which is mounted at {mount}; did you mean {Path.Combine(mount, "clients")}?", error);

            Assert.Null(InterceptionProbe.Resolve(hierarchy, mount, Directory.Exists, out error));
            Assert.StartsWith($"the proxy itself runs in {mount} (its group is {Path.Combine(mount, "proxy")})", error, StringComparison.Ordinal);

            // A subtree mount counts depth from the hierarchy's root.
            var subtree = new CgroupHierarchy(mount, "/user.slice", "/other");
            Assert.Equal(3, InterceptionProbe.Resolve(subtree, Path.Combine(mount, "clients", "billing"), Directory.Exists, out _)!.Level);
        }
        finally
        {
            Directory.Delete(mount, recursive: true);
        }
    }
}
