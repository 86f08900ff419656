using System.Globalization;
using BindProxy.Addressing;
using BindProxy.Configuration;
using BindProxy.Interception;
using BindProxy.Tests.Infrastructure;
using Microsoft.Extensions.Configuration;

namespace BindProxy.Tests.Configuration;

/// <summary>
/// The settings' definitions (<see cref="ConfigFieldAttribute"/>) against what the code does with
/// them: the example a message gives and the default an absent key stands for are values the
/// validator accepts, every definition says what the setting is, and the keys that wait for a
/// restart are the ones defined so.
/// </summary>
public sealed class FieldDefinitionTests
{
    /// <summary>Every section's table, with the base each test value is validated in.</summary>
    internal static readonly FieldTable[] Tables = [RouteConfig.Fields, InterceptConfig.Fields, TlsConfig.Fields, ListenTlsConfig.Fields, ProxyConfig.Fields, AdminConfig.Fields, FaultsConfig.Fields, CaptureConfig.Fields];

    private static readonly Lazy<TestCertificates> Certificates = new(() => new TestCertificates());

    public static TheoryData<string> AllFields() => [.. Tables.SelectMany(t => t.All).Select(f => f.Path)];

    private static ConfigField Field(string path) => Tables.SelectMany(t => t.All).Single(f => f.Path == path);

    [Theory]
    [MemberData(nameof(AllFields))]
    public void Every_setting_says_what_it_does_how_it_is_written_and_what_its_absence_means(string path)
    {
        var field = Field(path);
        Assert.False(string.IsNullOrWhiteSpace(field.Doc), $"{path} has no Doc");
        Assert.NotEmpty(field.Values);
        Assert.False(field.Default is not null && field.Unset is not null, $"{path} has both a Default and an Unset text");
        Assert.DoesNotContain('|', field.Doc + field.Forms + field.Unset);
        if (field.Default is not null)
        {
            // A default that is also one of the written forms must be written the same way.
            Assert.True(!field.Values.Contains(field.Default, StringComparer.OrdinalIgnoreCase) || field.Values.Contains(field.Default, StringComparer.Ordinal),
                $"{path}: the default '{field.Default}' is shown in Forms in another case");
        }
    }

    /// <summary>
    /// The example (the first value of Forms, which messages quote) and the default (what an
    /// absent key reads as) of every setting written on its own into a valid configuration: the
    /// validator reports nothing about that setting.
    /// </summary>
    [Theory]
    [MemberData(nameof(AllFields))]
    public async Task The_example_and_the_default_of_every_setting_are_accepted(string path)
    {
        var field = Field(path);
        if (field.Shape is FieldShape.Map or FieldShape.Sections)
        {
            // Written as sections, not values: their keys have definitions of their own, tested here one by one.
            Assert.True(field.Path is "Intercept" or "Tls" or "ListenTls" or "ClientIds" or "BindProxy:Routes", $"{path} is a section of a kind this test does not write");
            return;
        }

        if (field.Path == "Intercept:Cgroup")
        {
            // A group of this machine, which the validator looks up: the example names one that need not exist here.
            Assert.StartsWith("/sys/fs/cgroup/", field.Example, StringComparison.Ordinal);
            return;
        }

        if ((TlsConfig.Fields.All.Contains(field) || ListenTlsConfig.Fields.All.Contains(field)) && field.Name.EndsWith("File", StringComparison.Ordinal))
        {
            // A file the validator reads: the example names one that need not exist here (TlsConfigTests reads real ones).
            Assert.StartsWith("/etc/bindproxy/", field.Example, StringComparison.Ordinal);
            return;
        }

        if (field.Path == "Capture:Directory")
        {
            // A directory the validator makes and writes to: CaptureFilesTests give it real ones.
            Assert.Equal("captures", field.Example);
            return;
        }

        foreach (var value in new[] { field.Example, field.Default }.OfType<string>())
        {
            var errors = await ErrorsWithAsync(field, value);
            Assert.True(errors.Count == 0, $"{path} = '{value}' is refused: {string.Join("; ", errors)}");
        }
    }

    /// <summary>A setting that takes one of a few words shows exactly the words the code reads, in the code's order.</summary>
    [Fact]
    public void The_forms_of_a_choice_are_the_words_the_code_reads()
    {
        static string[] Words<TEnum>() where TEnum : struct, Enum => [.. Enum.GetNames<TEnum>()];
        Assert.Equal(Words<RouteProtocol>(), RouteConfig.Fields[nameof(RouteConfig.Protocol)].Values);
        Assert.Equal(ConfigValidator.AssignNames, RouteConfig.Fields[nameof(RouteConfig.Assign)].Values);
        Assert.Equal(Words<BindProxy.Addressing.ExhaustedPolicy>().Select(w => w.ToLowerInvariant()), RouteConfig.Fields[nameof(RouteConfig.WhenExhausted)].Values);
        Assert.Equal(Words<EngineSetting>().Select(w => w.ToLowerInvariant()), ProxyConfig.Fields[nameof(ProxyConfig.Engine)].Values);
        Assert.Equal(["true", "false"], RouteConfig.Fields[nameof(RouteConfig.XForwarded)].Values);
        Assert.Equal(["true", "false"], AdminConfig.Fields[nameof(AdminConfig.AllowNonLoopback)].Values);
    }

    [Fact]
    public void The_keys_that_wait_for_a_restart_are_the_ones_defined_so()
    {
        var configuration = new ConfigurationBuilder().AddInMemoryCollection(new Dictionary<string, string?>
        {
            ["BindProxy:Engine"] = "pipes",
            ["BindProxy:DrainTimeout"] = "00:00:05",
            ["Admin:Listen"] = "127.0.0.1:0",
            ["Faults:Listen"] = "127.0.0.1:8474",
        }).Build();

        var restartOnly = ConfigReader.ReadRestartOnly(configuration);
        Assert.Equal(["BindProxy:Engine", "Admin:Listen", "Admin:AllowNonLoopback", "Faults:Listen", "Faults:AllowNonLoopback"], restartOnly.Keys);
        Assert.Equal(["pipes", "127.0.0.1:0", null, "127.0.0.1:8474", null], restartOnly.Values);
        Assert.Equal(restartOnly.Keys, Tables.SelectMany(t => t.All).Where(f => f.Reload == FieldReload.Restart).Select(f => f.Path));
        Assert.All(RouteConfig.Fields.All, f => Assert.Equal(FieldReload.Live, f.Reload));
    }

    [Fact]
    public void The_typed_defaults_are_the_definitions()
    {
        Assert.Equal(TimeSpan.FromSeconds(10), ProxyDefaults.ConnectTimeout);
        Assert.Equal(TimeSpan.FromSeconds(100), ProxyDefaults.RequestTimeout);
        Assert.Equal(100 * 1024 * 1024, ProxyDefaults.MaxFrameSize);
        Assert.Equal(TimeSpan.FromSeconds(30), ProxyDefaults.DrainTimeout);
        Assert.Equal(TimeSpan.FromSeconds(30), ProxyDefaults.FrameTimeout);
        Assert.Equal(TimeSpan.FromMinutes(10), ProxyDefaults.AssignmentIdleTimeout);
        Assert.Equal(ProxyDefaults.ConnectTimeout, TimeSpan.Parse(RouteConfig.Fields[nameof(RouteConfig.ConnectTimeout)].Default!, CultureInfo.InvariantCulture));
    }

    [Fact]
    public void A_name_that_is_not_a_field_is_a_mistake_in_the_code()
    {
        Assert.Throws<KeyNotFoundException>(() => RouteConfig.Fields["Sorce"]);
        Assert.Same(RouteConfig.Fields[nameof(RouteConfig.Source)], RouteConfig.Fields.Find("source"));
    }

    /// <summary>The errors of a valid configuration with <paramref name="field"/> set to <paramref name="value"/> that concern that field.</summary>
    private static async Task<IReadOnlyList<string>> ErrorsWithAsync(ConfigField field, string value)
    {
        var route = new RouteConfig { Name = "r", Listen = "127.0.0.1:0", Upstream = "127.0.0.1:9", Source = "127.0.0.2" };
        var config = new ProxyConfig();
        if (RouteConfig.Fields.All.Contains(field))
        {
            route = field.With(route, value);
            if (field.OnlyFor is { } protocol && field.Name != nameof(RouteConfig.Protocol))
            {
                route = route with { Protocol = protocol.ToString() };
            }
        }
        else if (InterceptConfig.Fields.All.Contains(field))
        {
            // Ports needs a selector and a selector needs ports; the other one is a good value.
            var uid = InterceptionSupport.OwnUid() == 65534 ? "65533" : "65534";
            var intercept = new Dictionary<string, string?> { ["Ports"] = "9092", ["Uid"] = uid };
            intercept[field.Name] = value;
            route = route with { Upstream = null, Listen = "127.0.0.1:0", Intercept = intercept };
        }
        else if (TlsConfig.Fields.All.Contains(field))
        {
            // A password opens a key: the key of a real certificate made here.
            var tls = new Dictionary<string, string?> { [field.Name] = value };
            if (field.Name == nameof(TlsConfig.Password))
            {
                tls[nameof(TlsConfig.CertificateFile)] = Certificates.Value.Cert("client");
                tls[nameof(TlsConfig.KeyFile)] = Certificates.Value.Key("client");
            }

            route = route with { Tls = tls };
        }
        else if (ListenTlsConfig.Fields.All.Contains(field))
        {
            route = route with
            {
                ListenTls = new Dictionary<string, string?>
                {
                    [nameof(ListenTlsConfig.CertificateFile)] = Certificates.Value.Cert("server"),
                    [nameof(ListenTlsConfig.KeyFile)] = Certificates.Value.Key("server"),
                    [field.Name] = value,
                },
            };
        }
        else if (ProxyConfig.Fields.All.Contains(field))
        {
            config = field.With(config, value);
        }
        else if (FaultsConfig.Fields.All.Contains(field))
        {
            config = config with { Faults = field.With(new FaultsConfig { Listen = "127.0.0.1:0" }, value) };
        }
        else if (CaptureConfig.Fields.All.Contains(field))
        {
            config = config with { Capture = field.With(new CaptureConfig { Directory = Path.Combine(Path.GetTempPath(), "bindproxy-field-tests") }, value) };
            if (field.Name == nameof(CaptureConfig.Route))
            {
                // The route it names must exist.
                route = route with { Name = value };
            }
        }
        else
        {
            config = config with { Admin = field.With(new AdminConfig { Listen = "127.0.0.1:0" }, value) };
        }

        var result = await new ConfigValidator(new SourceAddressProbe(), new InterceptionProbe(), TestProxy.Toxics).ValidateAsync(config with { Routes = [route] }, CancellationToken.None);
        return [.. result.Errors.Where(e => e.Field == field.Path)
            .Where(e => !(field.Path == "Intercept:Uid" && value == InterceptionSupport.OwnUid()?.ToString(CultureInfo.InvariantCulture))) // the one uid refused on every machine
            .Select(e => e.ToString())];
    }
}
