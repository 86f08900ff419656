using System.Buffers;

namespace BindProxy.Kafka.Protocol;

/// <summary>
/// A request or response body of one API, generated from Kafka's message definitions
/// (<see cref="Messages"/>): every field of every version, read and written per version. A new
/// instance holds each field's default, so a response can be built from scratch.
/// </summary>
/// <remarks>
/// Record batches are slices of the frame that was read, not copies: read them (see
/// <see cref="RecordBatchHeader"/>) before the frame's buffer goes back to its pipe.
/// </remarks>
internal interface IKafkaMessage
{
    short ApiKey { get; }

    /// <summary>Reads the body (after the header) at <paramref name="version"/>; false with <see cref="KafkaReader.Error"/> set when it cannot.</summary>
    bool TryRead(ref KafkaReader reader, short version);

    void Write(KafkaWriter writer, short version);

    /// <summary>Walks the fields present at <paramref name="version"/>, in wire order.</summary>
    void Accept(IKafkaVisitor visitor, short version);
}

/// <summary>
/// Sees a message's fields by name, as they sit on the wire at one version: enough for a summary
/// (topics, partitions, error codes, record batches, throttle time) of any API without code per API.
/// </summary>
internal interface IKafkaVisitor
{
    /// <summary>Any integer field (int8 to int64, uint16).</summary>
    void Integer(string name, long value);

    void Boolean(string name, bool value);

    void Float(string name, double value);

    void String(string name, string? value);

    void Uuid(string name, Guid value);

    void Bytes(string name, byte[]? value);

    void Records(string name, ReadOnlySequence<byte>? value);

    /// <summary>A struct: a nested one (then <paramref name="name"/> is the field's) or an array element (the array's name).</summary>
    void BeginStruct(string name);

    void EndStruct();

    /// <summary>An array of <paramref name="count"/> elements, -1 when null; its elements follow, each under the array's name.</summary>
    void BeginArray(string name, int count);

    void EndArray();
}
