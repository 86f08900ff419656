using System.Runtime.Versioning;

namespace BindProxy.Transport.Linux;

/// <summary>Receives readiness events for descriptors registered with an <see cref="EpollLoop"/>.</summary>
[SupportedOSPlatform("linux")]
internal interface IEpollHandler
{
    /// <summary>
    /// Runs on the loop's thread. <paramref name="tag"/> is the value given at registration;
    /// <paramref name="events"/> is 0 for a turn asked for with <see cref="EpollLoop.Reschedule"/>.
    /// </summary>
    void OnEvents(uint events, int tag);

    /// <summary>
    /// The loop cannot run this handler on: its <see cref="OnEvents"/> or work posted for it threw,
    /// or the loop itself failed. Runs on the loop's thread; releases everything the handler holds
    /// (its descriptors are closed or handed back) and does not throw.
    /// </summary>
    void OnLoopFailure(Exception error);
}
