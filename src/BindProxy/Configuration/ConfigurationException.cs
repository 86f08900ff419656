namespace BindProxy.Configuration;

/// <summary>
/// A configuration problem found while the host is being put together (a logging section Serilog
/// cannot use): the command line prints its message as one line and exits 1, with no stack trace.
/// </summary>
internal sealed class ConfigurationException : Exception
{
    public ConfigurationException()
    {
    }

    public ConfigurationException(string message)
        : base(message)
    {
    }

    public ConfigurationException(string message, Exception innerException)
        : base(message, innerException)
    {
    }
}
