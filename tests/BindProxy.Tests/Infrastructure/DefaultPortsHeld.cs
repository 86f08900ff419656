using System.Net;
using System.Net.Sockets;
using BindProxy.Addressing;
using BindProxy.Tests.Infrastructure;

[assembly: AssemblyFixture(typeof(DefaultPortsHeld))]

namespace BindProxy.Tests.Infrastructure;

/// <summary>
/// The shipped configuration's ports, 127.0.0.1:19092 (the Kafka route) and 127.0.0.1:9901 (the
/// admin endpoint), are held for the whole run, as the proxy a user started from README holds
/// them: a test that needs them free fails on every run, not only beside a running proxy. A port
/// something else already holds (that proxy) is left to it.
/// </summary>
public sealed class DefaultPortsHeld : IDisposable
{
    public static readonly IPEndPoint[] Endpoints = [new(IPAddress.Loopback, 19092), new(IPAddress.Loopback, 9901)];

    private readonly List<Socket> _held = [];

    public DefaultPortsHeld()
    {
        foreach (var endpoint in Endpoints)
        {
            var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
            try
            {
                socket.Bind(endpoint);
                socket.Listen(1);
                _held.Add(socket);
            }
            catch (SocketException)
            {
                socket.Dispose();
            }
        }
    }

    public void Dispose()
    {
        foreach (var socket in _held)
        {
            socket.Dispose();
        }
    }
}

/// <summary>The guard itself: while the suite runs, the shipped ports are taken.</summary>
public sealed class DefaultPortsHeldTests(DefaultPortsHeld held)
{
    [Fact]
    public void The_shipped_ports_are_taken_while_the_suite_runs()
    {
        Assert.NotNull(held);
        foreach (var endpoint in DefaultPortsHeld.Endpoints)
        {
            Assert.Contains($"{endpoint} is in use", ListenProbe.Check(endpoint) ?? $"{endpoint} is free", StringComparison.Ordinal);
        }
    }
}
