using System.Net;
using System.Security.Cryptography;
using BindProxy.Tests.Infrastructure;

namespace BindProxy.Tests.Http;

/// <summary>Http routes in front of a real nginx (skipped without it, required in CI).</summary>
public sealed class NginxTests
{
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(60);

    [Theory]
    [InlineData("true", "127.0.0.1")]
    [InlineData("false", "")]
    public async Task Nginx_sees_the_source_address_and_X_Forwarded_For_per_config(string xForwarded, string expectedForwardedFor)
    {
        await using var nginx = await NginxServer.StartAsync();
        await using var proxy = await TestProxy.StartAsync(HttpRouteTests.Route(nginx.Address, source: "127.0.0.12", xForwarded: xForwarded));
        using var client = HttpRouteTests.Client(proxy);

        string body = await client.GetStringAsync("whoami", TestContext.Current.CancellationToken);

        Assert.Equal(["127.0.0.12", expectedForwardedFor], body.Split('\n')[..2]);
        string line = await nginx.WaitForAccessAsync("\"GET /whoami HTTP/1.1\" 200", Timeout);
        TestContext.Current.TestOutputHelper?.WriteLine($"nginx access log: {line}");
        Assert.StartsWith("127.0.0.12:", line, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_64_MiB_file_round_trips_through_nginx_intact()
    {
        const long size = 64L * 1024 * 1024;
        string expected = Payload.Sha256(size, seed: 12);
        await using var nginx = await NginxServer.StartAsync();
        await using var proxy = await TestProxy.StartAsync(HttpRouteTests.Route(nginx.Address, source: "127.0.0.12"));
        using var client = HttpRouteTests.Client(proxy);

        using var put = await client.PutAsync("files/blob", new Payload.Content(size, seed: 12), TestContext.Current.CancellationToken);
        Assert.Equal(HttpStatusCode.Created, put.StatusCode);

        using var get = await client.GetAsync("files/blob", HttpCompletionOption.ResponseHeadersRead, TestContext.Current.CancellationToken);
        Assert.Equal(HttpStatusCode.OK, get.StatusCode);
        await using var body = await get.Content.ReadAsStreamAsync(TestContext.Current.CancellationToken);
        using var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        using var cts = new CancellationTokenSource(Timeout);
        var buffer = new byte[64 * 1024];
        long received = 0;
        int n;
        while ((n = await body.ReadAsync(buffer, cts.Token)) > 0)
        {
            hash.AppendData(buffer, 0, n);
            received += n;
        }

        Assert.Equal(size, received);
        Assert.Equal(expected, Convert.ToHexString(hash.GetHashAndReset()));
        Assert.StartsWith("127.0.0.12:", await nginx.WaitForAccessAsync("\"PUT /files/blob HTTP/1.1\" 201", Timeout), StringComparison.Ordinal);
        Assert.StartsWith("127.0.0.12:", await nginx.WaitForAccessAsync("\"GET /files/blob HTTP/1.1\" 200", Timeout), StringComparison.Ordinal);
    }
}
