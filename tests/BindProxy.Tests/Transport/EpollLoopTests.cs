using System.Net;
using System.Net.Sockets;
using BindProxy.Forwarding;
using BindProxy.Transport.Linux;

namespace BindProxy.Tests.Transport;

public sealed class EpollLoopTests
{
    [Fact]
    public async Task Work_that_keeps_posting_itself_lets_ready_sockets_run_in_between()
    {
        Assert.SkipUnless(RelayEngine.IsSupported, "the relay engine runs on Linux only");
        using var loop = new EpollLoop("test loop", 64 * 1024, e => throw e);
        using var listener = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        listener.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        listener.Listen();
        using var client = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        await client.ConnectAsync(listener.LocalEndPoint!, TestContext.Current.CancellationToken);
        using var server = await listener.AcceptAsync(TestContext.Current.CancellationToken);

        var handler = new Recorder();
        int slot = loop.Register((int)server.SafeHandle.DangerousGetHandle(), Libc.EpollIn, handler, 0);
        const int Steps = 1000;
        var done = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);

        // Like an accept burst re-posting its wake-up: the socket becomes readable during step 1.
        Action<object?>? step = null;
        step = _ =>
        {
            if (++handler.Step == 1)
            {
                client.Send([1]);
            }

            if (handler.Step < Steps)
            {
                loop.Post(step!, null);
            }
            else
            {
                done.SetResult();
            }
        };
        loop.Post(step, null);
        await done.Task.WaitAsync(TimeSpan.FromSeconds(10), TestContext.Current.CancellationToken);
        loop.Post(_ => loop.Unregister(slot, keepOpen: true), null);

        Assert.InRange(handler.ReadyAtStep, 1, 10);
    }

    private sealed class Recorder : IEpollHandler
    {
        public int Step;

        public int ReadyAtStep { get; private set; } = -1;

        public void OnEvents(uint events, int tag)
        {
            if (ReadyAtStep < 0)
            {
                ReadyAtStep = Step;
            }
        }
    }
}
