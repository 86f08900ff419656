using System.Net;
using BindProxy.Capture;
using BindProxy.Configuration;
using BindProxy.Transport;

namespace BindProxy.Forwarding;

/// <summary>
/// The running captures and the taps they put on connections: a capture attaches to the live
/// connections it may want when it starts, and to each new one as it opens, until it ends. A
/// connection carries a tap only while some capture may want it.
/// </summary>
internal sealed class CaptureHub(ConnectionRegistry registry)
{
    private readonly Lock _lock = new();
    private volatile (CaptureSession Session, CaptureSelector Selector)[] _running = [];

    /// <summary>Captures running now.</summary>
    public int Running => _running.Length;

    /// <summary>
    /// Starts a capture of the connections <paramref name="selector"/> picks, open now or later;
    /// its <see cref="CaptureSession.RunAsync"/> writes it, and it lets go of every connection when that ends.
    /// </summary>
    public CaptureSession Start(CaptureSelector selector, CaptureLimits limits)
    {
        var session = new CaptureSession(selector.Describe(), selector.Legs, tap => Match(selector, tap), limits)
        {
            Release = Release,
        };
        lock (_lock)
        {
            _running = [.. _running, (session, selector)];
            foreach (var live in registry.Snapshot())
            {
                if (selector.Match(live) != CaptureMatch.No)
                {
                    // Its bytes have moved (perhaps reported to another capture's tap): this one has them from now on.
                    var tap = live.Legs.Tap ?? Install(live, new ConnectionTap(live.Route, live.Client, live.Listener, fromStart: false));
                    tap.Attach(session, fromStart: false);
                }
            }
        }

        return session;
    }

    /// <summary>Writes <paramref name="session"/> to <paramref name="output"/> until it ends, then forgets it.</summary>
    public async Task RunAsync(CaptureSession session, Stream output, CancellationToken cancellationToken)
    {
        try
        {
            await session.RunAsync(output, cancellationToken).ConfigureAwait(false);
        }
        finally
        {
            Forget(session);
        }
    }

    /// <summary>Writes <paramref name="session"/> to rolling <paramref name="files"/> until it ends, then forgets it.</summary>
    public async Task RunAsync(CaptureSession session, CaptureFileSet files, CancellationToken cancellationToken)
    {
        try
        {
            await session.RunAsync(files, cancellationToken).ConfigureAwait(false);
        }
        finally
        {
            Forget(session);
        }
    }

    private void Forget(CaptureSession session)
    {
        lock (_lock)
        {
            _running = [.. _running.Where(r => r.Session != session)];
        }
    }

    /// <summary>
    /// Before a pipe-path connection reads its first byte: a tap for it when a running capture may
    /// want its route, so such a capture has its streams from the start; null (nothing to do) otherwise.
    /// </summary>
    public ConnectionTap? Arm(ServedRoute served, IPEndPoint client, IPEndPoint listener)
    {
        var running = _running;
        if (running.Length == 0)
        {
            return null;
        }

        lock (_lock)
        {
            ConnectionTap? tap = null;
            foreach (var (session, selector) in _running)
            {
                if (selector.MatchRoute(served.Name, served.Root.Name) != CaptureMatch.No)
                {
                    tap ??= new ConnectionTap(served.Name, client, listener, fromStart: true);
                    tap.Attach(session);
                }
            }

            return tap;
        }
    }

    /// <summary>
    /// A connection is registered: its armed tap (or, with <paramref name="fromStart"/>, a new one
    /// when its bytes have not moved yet) learns who it is and goes on its legs, with every running
    /// capture that may want it; a tap no capture wants is not installed.
    /// </summary>
    public void Opened(ProxiedConnection live, ConnectionTap? armed, bool fromStart)
    {
        if (armed is null && _running.Length == 0)
        {
            return;
        }

        lock (_lock)
        {
            var tap = armed;
            bool made = false;
            foreach (var (session, selector) in _running)
            {
                if (!session.IsFinished && selector.Match(live) != CaptureMatch.No)
                {
                    if (tap is null)
                    {
                        tap = new ConnectionTap(live.Route, live.Client, live.Listener, fromStart);
                        made = true;
                    }

                    // An armed tap's own captures have its streams whole; one that joins now may have missed its first bytes.
                    tap.Attach(session, fromStart: made);
                }
            }

            if (tap is not null)
            {
                Install(live, tap);
                if (!tap.HasSessions)
                {
                    Uninstall(tap);
                }
            }
        }
    }

    /// <summary>
    /// A connection moves to other legs (a relay connection to the pipe path): its tap, if it has
    /// one, goes with it, under the lock that installs and takes off taps, so a capture starting or
    /// ending meanwhile finds it on the legs it is on. The new legs continue the old ones' counts,
    /// so the tap's stream offsets go on where they were.
    /// </summary>
    public bool Switch(ProxiedConnection live, IConnectionLegs from, IConnectionLegs to)
    {
        lock (_lock)
        {
            to.Tap = from.Tap;
            if (!live.SwitchLegs(from, to))
            {
                to.Tap = null;
                return false;
            }

            from.Tap = null;
            return true;
        }
    }

    /// <summary>Adds a comment to every running capture of connection <paramref name="connectionId"/> (a proxy event: a fault injected, say).</summary>
    internal bool Comment(long connectionId, string text, CaptureLeg leg = CaptureLeg.Client)
    {
        var live = registry.Snapshot().FirstOrDefault(c => c.Id == connectionId);
        if (live?.Legs.Tap is not { } tap)
        {
            return false;
        }

        tap.Comment(text, leg);
        return true;
    }

    private static ConnectionTap Install(ProxiedConnection live, ConnectionTap tap)
    {
        // Before Subject: a capture frames a leg only once it knows the connection, and by then it knows its TLS too.
        if (live.Legs is PipeLegs pipes)
        {
            if (pipes.ClientTls is { } client)
            {
                tap.Decrypted(CaptureLeg.Client, $"client ↔ listener, ListenTls: {Describe(client)}");
            }

            if (pipes.UpstreamTls is { } upstream)
            {
                tap.Decrypted(CaptureLeg.Upstream, $"source ↔ upstream, Tls: {Describe(upstream)}");
            }
        }

        tap.Subject = live;
        tap.Connected(live.Source, live.Upstream);
        tap.Uninstall = _ => live.Legs.Tap = null;
        live.Legs.Tap = tap;
        return tap;
    }

    private static string Describe(TlsSession tls) =>
        tls.PeerSubject is { } peer ? $"{tls.Version}, {tls.Cipher}, peer {peer}" : $"{tls.Version}, {tls.Cipher}";

    private static CaptureMatch Match(CaptureSelector selector, ConnectionTap tap) =>
        tap.Subject is ProxiedConnection live ? selector.Match(live) : CaptureMatch.Later;

    /// <summary>A capture lets go of a connection (not wanted after all, or the capture ended).</summary>
    private void Release(CaptureSession session, ConnectionTap tap)
    {
        lock (_lock)
        {
            session.Detached(tap);
            if (tap.Detach(session))
            {
                Uninstall(tap);
            }

            if (session.IsFinished)
            {
                _running = [.. _running.Where(r => r.Session != session)];
            }
        }
    }

    private static void Uninstall(ConnectionTap tap)
    {
        // A tap armed before its connection was registered has no connection to leave yet;
        // Opened takes it off then.
        tap.Uninstall?.Invoke(tap);
    }
}
