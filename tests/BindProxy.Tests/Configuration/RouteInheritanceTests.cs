using System.Reflection;
using BindProxy.Addressing;
using BindProxy.Configuration;
using BindProxy.Tests.Infrastructure;

namespace BindProxy.Tests.Configuration;

/// <summary>
/// A Kafka route's broker listeners are member routes made from it at run time: every setting of
/// the route reaches them, but for what the model marks as a member's own
/// (<see cref="NotInheritedAttribute"/>). A setting added to <see cref="RouteConfig"/> and
/// <see cref="RouteModel"/> fails here until it is set below, and then reaches broker routes by
/// itself or is marked, with a reason, as not reaching them.
/// </summary>
public sealed class RouteInheritanceTests
{
    /// <summary>
    /// A Kafka route with every field a Kafka route may set, each to a value other than its
    /// default, so that a member that missed a setting would differ from its root.
    /// </summary>
    private static RouteConfig EverySettingSet() => new()
    {
        Name = "kafka",
        Listen = "127.0.0.1:0",
        Upstream = "127.0.0.1:9",
        Source = "127.0.0.2-127.0.0.6",
        Protocol = "Kafka",
        ConnectTimeout = "00:00:03",
        IdleTimeout = "00:04:00",
        MaxConnections = "70",
        MaxConnectionsPerClient = "7",
        Assign = "kafka-client-id",
        ClientIds = new Dictionary<string, string?> { ["billing"] = "127.0.0.5" },
        WhenExhausted = "refuse",
        AssignmentIdleTimeout = "00:02:00",
        BrokerPorts = "19193-19194",
        AdvertisedHost = "proxy.example",
        AllowedBrokers = "127.0.0.0/8",
        FrameTimeout = "00:00:07",
        MaxFrameSize = "4096",
        DecodeBodies = "always",
        Tls = new Dictionary<string, string?> { ["CaFile"] = Certificates.Value.CaFile, ["ServerName"] = "kafka.example" },
        ListenTls = new Dictionary<string, string?> { ["CertificateFile"] = Certificates.Value.Cert("server"), ["KeyFile"] = Certificates.Value.Key("server") },
        Faults = """[{"type":"kafka_latency","attributes":{"api":"Metadata","latency":10}}]""",
    };

    private static readonly Lazy<TestCertificates> Certificates = new(() => new TestCertificates());

    /// <summary>The fields a Kafka route with broker listeners cannot set: its brokers keep their addresses when it intercepts.</summary>
    private static readonly string[] NotOnABrokerFamily = [nameof(RouteConfig.Intercept)];

    [Fact]
    public void The_test_route_sets_every_field_a_Kafka_route_may_set_to_other_than_its_default()
    {
        var route = EverySettingSet();
        foreach (var field in RouteConfig.Fields.All.Where(f => f.OnlyFor is null or RouteProtocol.Kafka && !NotOnABrokerFamily.Contains(f.Name)))
        {
            var text = field.Text(route);
            Assert.True(text is not null, $"{field.Name} is not set in {nameof(EverySettingSet)}: give it a value other than its default, so that this test sees it reach broker routes");
            Assert.False(string.Equals(text, field.Default, StringComparison.OrdinalIgnoreCase), $"{field.Name} is set to its default in {nameof(EverySettingSet)}; a member that missed it would not differ");
        }
    }

    [Fact]
    public async Task A_broker_route_has_every_setting_of_its_root_but_what_is_marked_as_its_own()
    {
        var result = await new ConfigValidator(new SourceAddressProbe(), toxics: TestProxy.Toxics).ValidateAsync(new ProxyConfig { Routes = [EverySettingSet()] }, CancellationToken.None);
        Assert.True(result.IsValid, string.Join("\n", result.Errors));
        var root = Assert.Single(result.Model!.Routes);
        var defaults = Assert.Single((await new ConfigValidator(new SourceAddressProbe(), toxics: TestProxy.Toxics).ValidateAsync(
            new ProxyConfig { Routes = [new RouteConfig { Name = "kafka", Listen = "127.0.0.1:0", Upstream = "127.0.0.1:9", Source = "127.0.0.2" }] },
            CancellationToken.None)).Model!.Routes);

        var (listen, brokerAddress) = Broker();
        var member = root.ForBroker(1, listen, brokerAddress);

        var inherited = new List<string>();
        foreach (var property in SettableProperties())
        {
            if (property.GetCustomAttribute<NotInheritedAttribute>() is { } own)
            {
                Assert.False(string.IsNullOrWhiteSpace(own.Reason), $"RouteModel.{property.Name} is not inherited, without a reason");
                continue;
            }

            Assert.True(Equals(property.GetValue(root), property.GetValue(member)),
                $"RouteModel.{property.Name} of a broker route is {property.GetValue(member) ?? "null"}, its root's is {property.GetValue(root) ?? "null"}: " +
                $"inherit it, or mark it [{nameof(NotInheritedAttribute)}] with the reason");
            inherited.Add(property.Name);
        }

        // What the root's settings made of each inherited property is not what a plain route has
        // (but Http, null on every Kafka route), so a member that missed one would have differed.
        Assert.All(inherited.Where(p => p != nameof(RouteModel.Http)), name =>
        {
            var property = typeof(RouteModel).GetProperty(name)!;
            Assert.NotEqual(Describe(property.GetValue(defaults)), Describe(property.GetValue(root)));
        });

        // The member's own: its name, endpoints, broker and root; not the file's text nor an interception.
        Assert.Equal("kafka/broker-1", member.Name);
        Assert.Same(listen, member.Listen);
        Assert.Same(brokerAddress, member.Upstream);
        Assert.Same(root, member.Parent);
        Assert.Same(root, member.Root);
        Assert.Null(member.Config);
        Assert.NotNull(root.Config);
        Assert.Equal(
            [nameof(RouteModel.Name), nameof(RouteModel.Listen), nameof(RouteModel.Upstream), nameof(RouteModel.Intercept), nameof(RouteModel.Config), nameof(RouteModel.Parent)],
            SettableProperties().Where(p => p.GetCustomAttribute<NotInheritedAttribute>() is not null).Select(p => p.Name));
    }

    [Fact]
    public async Task A_broker_route_takes_its_roots_new_settings_on_reload_and_keeps_its_own()
    {
        var validator = new ConfigValidator(new SourceAddressProbe(), toxics: TestProxy.Toxics);
        var before = Assert.Single((await validator.ValidateAsync(new ProxyConfig { Routes = [EverySettingSet()] }, CancellationToken.None)).Model!.Routes);
        var after = Assert.Single((await validator.ValidateAsync(new ProxyConfig { Routes = [EverySettingSet() with { IdleTimeout = "00:09:00", MaxFrameSize = "8192" }] }, CancellationToken.None)).Model!.Routes);
        var (listen, brokerAddress) = Broker();
        var member = before.ForBroker(2, listen, brokerAddress);

        var updated = member.WithParent(after);
        Assert.Equal(TimeSpan.FromMinutes(9), updated.IdleTimeout);
        Assert.Equal(8192, updated.Kafka!.MaxFrameSize);
        Assert.Same(after, updated.Parent);
        Assert.Equal(member.Name, updated.Name);
        Assert.Same(member.Listen, updated.Listen);
        Assert.Same(member.Upstream, updated.Upstream);
    }

    /// <summary>A broker listener's endpoint and the broker's address, as the broker directory gives them.</summary>
    private static (EndpointSpec Listen, UpstreamSpec Upstream) Broker()
    {
        Assert.True(EndpointSpec.TryParse("127.0.0.1:0", allowPortZero: true, out var listen, out _));
        Assert.True(UpstreamSpec.TryParse("127.0.0.1:19", out var upstream, out _));
        return (listen, upstream);
    }

    /// <summary>The properties a route model is made with (computed ones have no setter).</summary>
    private static IEnumerable<PropertyInfo> SettableProperties() =>
        typeof(RouteModel).GetProperties(BindingFlags.Public | BindingFlags.Instance).Where(p => p.CanWrite).OrderBy(p => p.MetadataToken);

    /// <summary>A value as text, so two separately validated models compare by what they hold.</summary>
    private static string Describe(object? value) => value switch
    {
        null => "null",
        SourcePool pool => pool.Addresses.ToString(),
        AssignmentSettings a => $"{a.Policy} {a.WhenExhausted} {a.IdleTimeout} {string.Join(",", a.ClientIds)}",
        KafkaRouteSettings k => $"{k.BrokerPorts} {k.AdvertisedHost} {k.MaxFrameSize} {k.FrameTimeout} {k.AllowedBrokers}",
        _ => value.ToString() ?? "",
    };
}
