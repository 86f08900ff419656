using Microsoft.Win32.SafeHandles;

namespace BindProxy.Capture;

/// <summary>
/// Whether the calling thread has lately waited for a CPU longer than it ran on one: the kernel's
/// per-thread <c>/proc/thread-self/schedstat</c> (time run, time runnable but waiting, in ns). For
/// a thread at nice 19 that means other threads wanted the CPU, so the capture writer backs off.
/// Made on the thread it measures; where there is no such file it never says so.
/// </summary>
internal sealed class CpuContention : IDisposable
{
    /// <summary>Shortest stretch judged: shorter ones say more about one wakeup than about the load.</summary>
    private const long WindowNs = 10_000_000;

    private readonly SafeFileHandle? _file;
    private readonly byte[] _buffer = new byte[96];
    private long _run;
    private long _wait;

    public CpuContention()
    {
        if (!OperatingSystem.IsLinux())
        {
            return;
        }

        try
        {
            _file = File.OpenHandle("/proc/thread-self/schedstat");
            Read(out _run, out _wait);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            _file = null;
        }
    }

    /// <summary>
    /// True when, since the last stretch it judged (at least 10 ms of running and waiting), this
    /// thread waited for a CPU longer than it ran.
    /// </summary>
    public bool Contended()
    {
        if (_file is null || !Read(out long run, out long wait))
        {
            return false;
        }

        long ran = run - _run;
        long waited = wait - _wait;
        if (ran + waited < WindowNs)
        {
            return false;
        }

        _run = run;
        _wait = wait;
        return waited > ran;
    }

    private bool Read(out long run, out long wait)
    {
        run = wait = 0;
        int length;
        try
        {
            length = RandomAccess.Read(_file!, _buffer, 0);
        }
        catch (IOException)
        {
            return false;
        }

        var text = _buffer.AsSpan(0, length);
        int space = text.IndexOf((byte)' ');
        if (space <= 0)
        {
            return false;
        }

        int second = text[(space + 1)..].IndexOf((byte)' ');
        return System.Buffers.Text.Utf8Parser.TryParse(text[..space], out run, out _) &&
            System.Buffers.Text.Utf8Parser.TryParse(second < 0 ? text[(space + 1)..] : text.Slice(space + 1, second), out wait, out _);
    }

    public void Dispose() => _file?.Dispose();
}
