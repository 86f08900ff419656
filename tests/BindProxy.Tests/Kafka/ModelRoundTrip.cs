using System.Buffers;
using BindProxy.Kafka.Protocol;

namespace BindProxy.Tests.Kafka;

/// <summary>Reads a whole frame with the generated model and writes it again.</summary>
internal static class ModelRoundTrip
{
    /// <summary>
    /// The request frame (size prefix included) read and written again by the model, or why it could
    /// not be: the header through the generated RequestHeader, the body through the API's request.
    /// </summary>
    public static (byte[]? Written, string? Problem) Request(byte[] frame)
    {
        var reader = new KafkaReader(new ReadOnlySequence<byte>(frame));
        reader.Skip(4);
        if (!reader.ReadInt16(out var key) || !reader.ReadInt16(out var version))
        {
            return (null, "short header");
        }

        var api = KafkaApis.Of(key);
        if (!api.Knows(version))
        {
            return (null, $"api {key} v{version} unknown to the model");
        }

        reader = new KafkaReader(new ReadOnlySequence<byte>(frame));
        reader.Skip(4);
        var header = new BindProxy.Kafka.Protocol.Messages.RequestHeaderData();
        var headerVersion = api.RequestHeaderVersion(version);
        var body = KafkaApis.CreateRequest(key)!;
        if (!header.TryRead(ref reader, headerVersion) || !body.TryRead(ref reader, version) || !reader.ExpectEnd())
        {
            return (null, $"{api.Name} v{version} request: {reader.Error} at byte {reader.Position} of {frame.Length}");
        }

        var writer = new KafkaWriter();
        var prefix = writer.ReserveInt32();
        header.Write(writer, headerVersion);
        body.Write(writer, version);
        writer.PatchInt32(prefix, writer.Length - 4);
        return (writer.ToArray(), null);
    }

    /// <summary>The response frame read and written again as an answer to (<paramref name="key"/>, <paramref name="version"/>).</summary>
    public static (byte[]? Written, string? Problem) Response(byte[] frame, short key, short version, short? bodyVersion = null)
    {
        var api = KafkaApis.Of(key);
        if (!api.Knows(version))
        {
            return (null, $"api {key} v{version} unknown to the model");
        }

        var reader = new KafkaReader(new ReadOnlySequence<byte>(frame));
        reader.Skip(4);
        var header = new BindProxy.Kafka.Protocol.Messages.ResponseHeaderData();
        var headerVersion = api.ResponseHeaderVersion(version);
        var body = KafkaApis.CreateResponse(key)!;
        var readAs = bodyVersion ?? version;
        if (!header.TryRead(ref reader, headerVersion) || !body.TryRead(ref reader, readAs) || !reader.ExpectEnd())
        {
            return (null, $"{api.Name} v{version} response: {reader.Error} at byte {reader.Position} of {frame.Length}");
        }

        var writer = new KafkaWriter();
        var prefix = writer.ReserveInt32();
        header.Write(writer, headerVersion);
        body.Write(writer, readAs);
        writer.PatchInt32(prefix, writer.Length - 4);
        return (writer.ToArray(), null);
    }
}
