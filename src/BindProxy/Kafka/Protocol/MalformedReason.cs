namespace BindProxy.Kafka.Protocol;

/// <summary>Why bytes off the wire could not be parsed. Values, not exceptions: this is the data path.</summary>
internal enum MalformedReason
{
    None,

    /// <summary>A field runs past the end of the frame.</summary>
    Truncated,

    /// <summary>A length or count is negative where null is not allowed, or otherwise impossible.</summary>
    InvalidLength,

    /// <summary>An array count exceeds the bytes left in the frame, so it cannot be genuine.</summary>
    CountExceedsRemaining,

    /// <summary>An unsigned varint is longer than 5 bytes or overflows 32 bits.</summary>
    InvalidVarint,

    /// <summary>Bytes remain after the last field of a message or tagged field.</summary>
    TrailingBytes,

    /// <summary>A tagged field's declared size does not match its content.</summary>
    TaggedFieldSizeMismatch,

    /// <summary>The version is beyond what the proxy can parse.</summary>
    UnsupportedVersion,

    /// <summary>The frame is shorter than its fixed header.</summary>
    FrameTooShort,

    /// <summary>The mapper returned a host that cannot be encoded in the field (too long).</summary>
    MappedHostTooLong,

    /// <summary>A string's bytes are not valid UTF-8, so it could not be written back as it came.</summary>
    InvalidString,

    /// <summary>The api key is one the model does not know.</summary>
    UnknownApi,
}
