using System.Net;
using System.Net.Sockets;
using BindProxy.Addressing;
using BindProxy.Tests.Infrastructure;

namespace BindProxy.Tests.Addressing;

public sealed class ProcessLookupTests
{
    [Theory]
    [InlineData("127.0.0.1")]
    [InlineData("::1")]
    public async Task Finds_the_process_that_owns_a_loopback_client_socket(string address)
    {
        Assert.SkipUnless(ProcessLookup.IsSupported, "process lookup reads Linux's /proc");
        using var listener = new Socket(AddressFamily.InterNetworkV6 == IPAddress.Parse(address).AddressFamily ? AddressFamily.InterNetworkV6 : AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        listener.Bind(new IPEndPoint(IPAddress.Parse(address), 0));
        listener.Listen();
        using var client = await SocketExtensions.ConnectAsync((IPEndPoint)listener.LocalEndPoint!);
        using var accepted = await listener.AcceptAsync();

        var lookup = new ProcessLookup();
        var found = lookup.Find((IPEndPoint)accepted.RemoteEndPoint!, (IPEndPoint)accepted.LocalEndPoint!);

        Assert.NotNull(found);
        Assert.Equal(Environment.ProcessId, found.Pid);
        Assert.False(string.IsNullOrEmpty(found.Name));

        // The second look finds it among the known processes, with the same identity.
        Assert.Equal(found, lookup.Find((IPEndPoint)accepted.RemoteEndPoint!, (IPEndPoint)accepted.LocalEndPoint!));
    }

    [Fact]
    public void A_connection_that_does_not_exist_has_no_owner()
    {
        Assert.SkipUnless(ProcessLookup.IsSupported, "process lookup reads Linux's /proc");
        Assert.Null(new ProcessLookup().Find(new IPEndPoint(IPAddress.Loopback, 1), new IPEndPoint(IPAddress.Loopback, 2)));
    }
}
