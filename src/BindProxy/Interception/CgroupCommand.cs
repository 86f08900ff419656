using System.Diagnostics;
using System.Runtime.InteropServices;
using System.Runtime.Versioning;

namespace BindProxy.Interception;

/// <summary>
/// Runs a command inside a cgroup, with this process's stdin, stdout and stderr (inherited, not
/// redirected) and its signals passed on; its exit code is the command's.
/// </summary>
/// <remarks>
/// The child must be in the group before it makes any connection, and .NET's <see cref="Process"/>
/// cannot place a child in a cgroup (no clone3 CLONE_INTO_CGROUP; code run between fork and exec
/// would have to be native). So the child starts as a one-line <c>/bin/sh</c> trampoline that
/// writes its own pid to the group's <c>cgroup.procs</c> and then execs the command in place: the
/// command is the same process (its pid is the one this class holds), born into the group.
/// </remarks>
[SupportedOSPlatform("linux")]
internal sealed partial class CgroupCommand : IDisposable
{
    private const string Shell = "/bin/sh";

    // "$0" is the group's cgroup.procs, "$@" the command; a failed move exits before the command
    // runs (the shell prints why), so nothing ever runs outside the group.
    private const string Trampoline = "echo $$ > \"$0\" || exit 125; exec \"$@\"";

    private const int SigInt = 2;
    private const int SigQuit = 3;
    private const int SigTerm = 15;
    private const int SigHup = 1;

    private readonly Process _process;
    private readonly List<PosixSignalRegistration> _signals = [];

    private CgroupCommand(Process process)
    {
        _process = process;
    }

    public int Pid => _process.Id;

    /// <summary>Starts <paramref name="command"/> in the group whose <c>cgroup.procs</c> is <paramref name="procsFile"/>.</summary>
    public static CgroupCommand Start(string procsFile, IReadOnlyList<string> command)
    {
        var info = new ProcessStartInfo(Shell) { UseShellExecute = false };
        info.ArgumentList.Add("-c");
        info.ArgumentList.Add(Trampoline);
        info.ArgumentList.Add(procsFile);
        foreach (var arg in command)
        {
            info.ArgumentList.Add(arg);
        }

        var started = new CgroupCommand(Process.Start(info) ?? throw new InvalidOperationException($"{Shell} did not start"));
        started.ForwardSignals();
        return started;
    }

    /// <summary>Waits for the command to exit; its exit code (128 + N when signal N ended it).</summary>
    public async Task<int> WaitAsync()
    {
        await _process.WaitForExitAsync().ConfigureAwait(false);
        return _process.ExitCode;
    }

    /// <summary>
    /// SIGTERM and SIGHUP go to the command, and keep this process running until the command is
    /// gone (its connections pass through this process). SIGINT and SIGQUIT from the keyboard
    /// reach the command already, since it shares the terminal's foreground process group, so they
    /// are passed on only when this process is not in that group (sent with kill, or no terminal);
    /// passing them on as well would give the command each Ctrl-C twice.
    /// </summary>
    private void ForwardSignals()
    {
        _signals.Add(PosixSignalRegistration.Create(PosixSignal.SIGTERM, context => Forward(context, SigTerm, always: true)));
        _signals.Add(PosixSignalRegistration.Create(PosixSignal.SIGHUP, context => Forward(context, SigHup, always: true)));
        _signals.Add(PosixSignalRegistration.Create(PosixSignal.SIGINT, context => Forward(context, SigInt, always: false)));
        _signals.Add(PosixSignalRegistration.Create(PosixSignal.SIGQUIT, context => Forward(context, SigQuit, always: false)));
    }

    private void Forward(PosixSignalContext context, int signal, bool always)
    {
        context.Cancel = true;
        if ((always || !InForegroundOfTerminal()) && !_process.HasExited)
        {
            _ = Kill(_process.Id, signal);
        }
    }

    private static bool InForegroundOfTerminal()
    {
        int foreground = TcGetPgrp(0);
        return foreground > 0 && foreground == GetPgrp();
    }

    public void Dispose()
    {
        foreach (var signal in _signals)
        {
            signal.Dispose();
        }

        _process.Dispose();
    }

    [LibraryImport("libc", EntryPoint = "kill", SetLastError = true)]
    private static partial int Kill(int pid, int signal);

    [LibraryImport("libc", EntryPoint = "tcgetpgrp", SetLastError = true)]
    private static partial int TcGetPgrp(int fd);

    [LibraryImport("libc", EntryPoint = "getpgrp")]
    private static partial int GetPgrp();
}
