using System.Diagnostics;

namespace BindProxy.Tests.Infrastructure;

/// <summary>
/// The one way tests wait for a condition: checked every few milliseconds until it holds or the
/// timeout passes, then a failure that says what was awaited. No test sleeps to synchronise.
/// </summary>
public static class Poll
{
    public static readonly TimeSpan DefaultTimeout = TimeSpan.FromSeconds(10);

    private static readonly TimeSpan Interval = TimeSpan.FromMilliseconds(20);

    /// <summary>Waits until <paramref name="condition"/> is true; fails with <paramref name="what"/> after <paramref name="timeout"/>.</summary>
    public static Task UntilAsync(Func<bool> condition, string what, TimeSpan? timeout = null) =>
        WaitAsync(() => ValueTask.FromResult(condition()), done => done, _ => what, timeout);

    /// <summary>
    /// Waits until <paramref name="condition"/> is true; <paramref name="what"/> is asked only when
    /// the wait fails, so it can describe the state that was reached instead.
    /// </summary>
    public static Task UntilAsync(Func<bool> condition, Func<string> what, TimeSpan? timeout = null) =>
        WaitAsync(() => ValueTask.FromResult(condition()), done => done, _ => what(), timeout);

    /// <summary>Waits until the asynchronous <paramref name="condition"/> is true (a probe that has to do I/O to know).</summary>
    public static Task UntilAsync(Func<Task<bool>> condition, string what, TimeSpan? timeout = null) =>
        WaitAsync(async () => await condition(), done => done, _ => what, timeout);

    /// <summary>Waits until <paramref name="read"/> returns a value that <paramref name="accept"/> takes, and returns it.</summary>
    public static Task<T> UntilAsync<T>(Func<T> read, Func<T, bool> accept, string what, TimeSpan? timeout = null) =>
        WaitAsync(() => ValueTask.FromResult(read()), accept, value => $"{what} (last value: {Show(value)})", timeout);

    /// <summary>Waits until the asynchronous <paramref name="read"/> returns a value that <paramref name="accept"/> takes, and returns it.</summary>
    public static Task<T> UntilAsync<T>(Func<Task<T>> read, Func<T, bool> accept, string what, TimeSpan? timeout = null) =>
        WaitAsync(async () => await read(), accept, value => $"{what} (last value: {Show(value)})", timeout);

    /// <summary>
    /// Waits until <paramref name="read"/> has returned the same value for <paramref name="quiet"/>
    /// (a count that stops growing, a table that settles), and returns that value. Time passing
    /// without change is the condition here, so <paramref name="quiet"/> is part of what is tested.
    /// </summary>
    public static Task<T> SteadyAsync<T>(Func<T> read, TimeSpan quiet, string what, TimeSpan? timeout = null)
    {
        var last = read();
        var unchanged = Stopwatch.StartNew();
        return WaitAsync(
            () =>
            {
                var value = read();
                if (!EqualityComparer<T>.Default.Equals(value, last))
                {
                    last = value;
                    unchanged.Restart();
                }

                return ValueTask.FromResult(value);
            },
            _ => unchanged.Elapsed >= quiet,
            value => $"{what} (no {quiet.TotalMilliseconds:0} ms without change; last value: {Show(value)})",
            timeout);
    }

    /// <summary>A value for a failure message: collections one element a line, so a log or a table can be read.</summary>
    private static string Show<T>(T value) => value switch
    {
        null => "none",
        string text => text,
        System.Collections.IEnumerable items => "\n" + string.Join("\n", items.Cast<object?>()),
        _ => value.ToString() ?? "",
    };

    private static async Task<T> WaitAsync<T>(Func<ValueTask<T>> read, Func<T, bool> accept, Func<T, string> describe, TimeSpan? timeout)
    {
        var limit = timeout ?? DefaultTimeout;
        var waited = Stopwatch.StartNew();
        while (true)
        {
            var value = await read();
            if (accept(value))
            {
                return value;
            }

            if (waited.Elapsed >= limit)
            {
                Assert.Fail($"timed out after {limit.TotalSeconds:0.#} s waiting for: {describe(value)}");
            }

            await Task.Delay(Interval);
        }
    }
}
