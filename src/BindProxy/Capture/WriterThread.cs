using System.Runtime.InteropServices;

namespace BindProxy.Capture;

/// <summary>
/// The thread a capture writes on: its own, at the lowest priority the process may give it, so
/// that under contention the capture falls behind (and drops, counted) instead of taking the CPU
/// the forwarding threads would have had.
/// </summary>
internal static partial class WriterThread
{
    /// <summary>Runs <paramref name="body"/> on a new background thread; the task ends with it.</summary>
    public static Task Run(string name, Action body)
    {
        var done = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var thread = new Thread(() =>
        {
            LowerPriority();
            try
            {
                body();
                done.SetResult();
            }
            catch (Exception e)
            {
                done.SetException(e);
            }
        })
        {
            IsBackground = true,
            Name = name,
        };
        thread.Start();
        return done.Task;
    }

    /// <summary>
    /// Lowers the calling thread's priority to nice 19. .NET's <see cref="Thread.Priority"/> does
    /// nothing on Linux, so the nice value is set directly (per thread on Linux: by its tid). Where
    /// that is not possible it runs at normal priority: forwarding slower under a capture, nothing worse.
    /// </summary>
    /// <remarks>
    /// Measured with bench/capture.sh, a capture of the bulk stream itself on 2 shared cores: the
    /// writer on the thread pool at normal priority wrote 0.45–0.59 of both legs' bytes and its
    /// CPU came out of the stream's (0.61 of the route's speed); at nice 19 it wrote 0.30–0.51 for
    /// the same speed, and with the relay's single copy 0.10–0.52 for 0.70, what it could not take
    /// dropped and counted. SCHED_IDLE measured no better (0.10–0.47 written, 0.61) and would starve
    /// a capture on a machine that is merely busy. What was left of the cost was not the writer's
    /// own: sending its pcapng (Kestrel, at normal priority) and the reader taking it, which is why
    /// the writer also stays away while it is contended (<see cref="CpuContention"/>).
    /// </remarks>
    private static void LowerPriority()
    {
        if (!OperatingSystem.IsLinux())
        {
            return;
        }

        try
        {
            _ = SetPriority(PrioProcess, GetTid(), 19);
        }
        catch (Exception e) when (e is DllNotFoundException or EntryPointNotFoundException)
        {
        }
    }

    private const int PrioProcess = 0;

    [LibraryImport("libc", EntryPoint = "gettid")]
    private static partial int GetTid();

    [LibraryImport("libc", EntryPoint = "setpriority", SetLastError = true)]
    private static partial int SetPriority(int which, int who, int priority);
}
