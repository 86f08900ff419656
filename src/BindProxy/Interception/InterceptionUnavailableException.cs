namespace BindProxy.Interception;

/// <summary>
/// The interception rules could not be installed when the proxy started (the kernel refused
/// them): the proxy does not serve without them, since the selected clients would reach their
/// servers around it. The message is one line naming the route(s), with nft's own words.
/// </summary>
internal sealed class InterceptionUnavailableException : Exception
{
    public InterceptionUnavailableException()
    {
    }

    public InterceptionUnavailableException(string message)
        : base(message)
    {
    }

    public InterceptionUnavailableException(string message, Exception innerException)
        : base(message, innerException)
    {
    }

    /// <summary>What nft said.</summary>
    public string NftError { get; init; } = "";
}
