using BindProxy.Kafka.Framing;
using BindProxy.Kafka.Protocol;
using BindProxy.Transport;

namespace BindProxy.Kafka;

/// <summary>Reads the client.id of a connection's first Kafka request without consuming any byte of it.</summary>
internal static class KafkaClientIdReader
{
    /// <summary>
    /// The client.id of the first request, "" when the header carries none, or null when the first
    /// bytes are not a Kafka request header or none arrive within <paramref name="timeout"/>.
    /// </summary>
    public static async Task<string?> PeekAsync(PipeSocket client, TimeSpan timeout, CancellationToken cancellationToken)
    {
        using var cts = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        cts.CancelAfter(timeout);
        var input = client.Input;
        while (true)
        {
            System.IO.Pipelines.ReadResult result;
            try
            {
                result = await input.ReadAsync(cts.Token).ConfigureAwait(false);
            }
            catch (OperationCanceledException)
            {
                return null;
            }

            var buffer = result.Buffer;
            var probe = buffer;
            var status = KafkaFrameReader.TryReadFrame(ref probe, int.MaxValue, out _, out _);
            if (status != FrameReadStatus.Error)
            {
                var parsed = KafkaRequestHeader.TryParse(buffer, out var header);
                if (parsed == MalformedReason.None)
                {
                    // Examined nothing: the session's first read gets these bytes again at once.
                    input.AdvanceTo(buffer.Start, buffer.Start);
                    return header.ClientId ?? "";
                }

                bool incomplete = status == FrameReadStatus.NeedMoreData && parsed is MalformedReason.Truncated or MalformedReason.FrameTooShort;
                if (incomplete && !result.IsCompleted && !result.IsCanceled)
                {
                    input.AdvanceTo(buffer.Start, buffer.End);
                    continue;
                }
            }

            input.AdvanceTo(buffer.Start, buffer.Start);
            return null;
        }
    }
}
