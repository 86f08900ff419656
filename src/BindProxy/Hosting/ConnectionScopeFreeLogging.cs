using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace BindProxy.Hosting;

/// <summary>
/// Kestrel opens a logging scope (its connection id) for every connection. The proxy's own lines
/// name their endpoints instead, and under Serilog each scope costs several allocations and an
/// execution-context copy per connection, so Kestrel's logger is given one that ignores scopes.
/// Everything Kestrel logs still goes through.
/// </summary>
internal static class ConnectionScopeFreeLogging
{
    private const string KestrelCategory = "Microsoft.AspNetCore.Server.Kestrel";

    /// <summary>Wraps the registered <see cref="ILoggerFactory"/> (call after the logging provider is added).</summary>
    public static IServiceCollection WithoutKestrelConnectionScopes(this IServiceCollection services)
    {
        var registered = services.LastOrDefault(d => d.ServiceType == typeof(ILoggerFactory))
            ?? throw new InvalidOperationException("No ILoggerFactory is registered yet.");
        services.Remove(registered);
        services.AddSingleton<ILoggerFactory>(sp => new Factory(registered switch
        {
            { ImplementationInstance: ILoggerFactory instance } => instance,
            { ImplementationFactory: { } make } => (ILoggerFactory)make(sp),
            _ => (ILoggerFactory)ActivatorUtilities.CreateInstance(sp, registered.ImplementationType!),
        }));
        return services;
    }

    private sealed class Factory(ILoggerFactory inner) : ILoggerFactory
    {
        public ILogger CreateLogger(string categoryName)
        {
            var logger = inner.CreateLogger(categoryName);
            return categoryName == KestrelCategory ? new ScopeFree(logger) : logger;
        }

        public void AddProvider(ILoggerProvider provider) => inner.AddProvider(provider);

        public void Dispose() => inner.Dispose();
    }

    private sealed class ScopeFree(ILogger inner) : ILogger
    {
        public IDisposable? BeginScope<TState>(TState state)
            where TState : notnull => null;

        public bool IsEnabled(LogLevel logLevel) => inner.IsEnabled(logLevel);

        public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter) =>
            inner.Log(logLevel, eventId, state, exception, formatter);
    }
}
