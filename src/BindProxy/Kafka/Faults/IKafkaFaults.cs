using System.Buffers;
using BindProxy.Kafka.Protocol;

namespace BindProxy.Kafka.Faults;

/// <summary>
/// What a <see cref="KafkaSession"/> asks about faults: told of every request it tracks (and
/// whether to forward it), and asked, for every response, what to pass on and after how long.
/// </summary>
internal interface IKafkaFaults
{
    /// <summary>
    /// A request was tracked. <paramref name="request"/> is the whole frame when <paramref name="whole"/>,
    /// else the start of one streamed through (it is then always forwarded).
    /// </summary>
    RequestVerdict OnRequest(in ReadOnlySequence<byte> request, in KafkaRequestHeader header, bool whole, bool expectsResponse);

    /// <summary>True while a Kafka toxic is on the route: a response must then be whole before it is let through.</summary>
    bool HasKafkaToxics { get; }

    /// <summary>
    /// <paramref name="response"/> answers <paramref name="request"/> (<paramref name="correlationId"/>):
    /// pass it, swallow it or replace it. May wait (a delay) first.
    /// </summary>
    ValueTask<ResponseVerdict> OnResponseAsync(int correlationId, InFlightRequest request, ReadOnlySequence<byte> response, CancellationToken cancellationToken);
}

/// <summary>What becomes of a request: forwarded (<see cref="Forward"/>), or kept from the broker and answered with <see cref="Answer"/> (null: no answer, acks=0).</summary>
internal readonly record struct RequestVerdict(bool Forward, byte[]? Answer, string? Injected)
{
    public static RequestVerdict Forwarded => new(true, null, null);
}

/// <summary>What becomes of a response: passed as it came, swallowed, or replaced by <see cref="Replacement"/>.</summary>
internal readonly record struct ResponseVerdict(bool Pass, byte[]? Replacement, string? Injected)
{
    public static ResponseVerdict Passed => new(true, null, null);
}
