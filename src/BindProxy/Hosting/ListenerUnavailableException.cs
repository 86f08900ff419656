namespace BindProxy.Hosting;

/// <summary>
/// A listener of the configuration could not be opened at startup (a port taken since it was
/// checked, a missing permission): the command line prints the message as one line and exits 1.
/// </summary>
internal sealed class ListenerUnavailableException : Exception
{
    public ListenerUnavailableException()
    {
    }

    public ListenerUnavailableException(string message)
        : base(message)
    {
    }

    public ListenerUnavailableException(string message, Exception innerException)
        : base(message, innerException)
    {
    }
}
