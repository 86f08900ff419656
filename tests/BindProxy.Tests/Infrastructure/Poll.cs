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
    public static async Task UntilAsync(Func<bool> condition, string what, TimeSpan? timeout = null)
    {
        var deadline = DateTime.UtcNow + (timeout ?? DefaultTimeout);
        while (!condition())
        {
            if (DateTime.UtcNow >= deadline)
            {
                Assert.Fail($"timed out after {(timeout ?? DefaultTimeout).TotalSeconds:0.#} s waiting for: {what}");
            }

            await Task.Delay(Interval);
        }
    }

    /// <summary>Waits until <paramref name="read"/> returns a value that <paramref name="accept"/> takes, and returns it.</summary>
    public static async Task<T> UntilAsync<T>(Func<T> read, Func<T, bool> accept, string what, TimeSpan? timeout = null)
    {
        var deadline = DateTime.UtcNow + (timeout ?? DefaultTimeout);
        while (true)
        {
            var value = read();
            if (accept(value))
            {
                return value;
            }

            if (DateTime.UtcNow >= deadline)
            {
                Assert.Fail($"timed out after {(timeout ?? DefaultTimeout).TotalSeconds:0.#} s waiting for: {what} (last value: {value})");
            }

            await Task.Delay(Interval);
        }
    }
}
