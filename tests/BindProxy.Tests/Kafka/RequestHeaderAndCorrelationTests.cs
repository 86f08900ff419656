using System.Buffers;
using BindProxy.Kafka.Protocol;

namespace BindProxy.Tests.Kafka;

public sealed class RequestHeaderAndCorrelationTests
{
    [Theory]
    [InlineData(KafkaApiKeys.Metadata, 8, 1)]
    [InlineData(KafkaApiKeys.Metadata, 13, 2)]
    [InlineData(KafkaApiKeys.ApiVersions, 3, 2)]
    [InlineData(KafkaApiKeys.ControlledShutdown, 0, 0)]
    [InlineData(KafkaApiKeys.SaslHandshake, 1, 1)]
    [InlineData((short)999, 0, 2)]
    public void Header_versions_follow_the_flexible_table(short apiKey, short apiVersion, int expected) =>
        Assert.Equal(expected, KafkaApis.Of(apiKey).RequestHeaderVersion(apiVersion));

    [Fact]
    public void ApiVersions_responses_always_use_header_v0() =>
        Assert.Equal(0, KafkaApis.Of(KafkaApiKeys.ApiVersions).ResponseHeaderVersion(4));

    [Theory]
    [InlineData(KafkaApiKeys.Metadata, 4, "kcat")]
    [InlineData(KafkaApiKeys.Metadata, 13, "rdkafka")]
    [InlineData(KafkaApiKeys.Fetch, 16, null)]
    [InlineData(KafkaApiKeys.ControlledShutdown, 0, null)]
    public void Header_is_parsed_from_any_segmentation(short apiKey, short apiVersion, string? clientId)
    {
        var frame = TestSupport.RequestFrame(apiKey, apiVersion, 77, clientId, w => w.Int32(0x5A5A5A5A));
        var bodyOffset = frame.Length - 4;
        for (var cut = 1; cut < frame.Length; cut++)
        {
            Assert.Equal(MalformedReason.None, KafkaRequestHeader.TryParse(TestSupport.Segmented(frame, [cut]), out var header));
            Assert.Equal(apiKey, header.ApiKey);
            Assert.Equal(apiVersion, header.ApiVersion);
            Assert.Equal(77, header.CorrelationId);
            Assert.Equal(apiKey == KafkaApiKeys.ControlledShutdown ? null : clientId, header.ClientId);
            Assert.Equal(bodyOffset, header.BodyOffset);
        }

        Assert.Equal(MalformedReason.None, KafkaRequestHeader.TryParse(TestSupport.ByteByByte(frame), out _));
    }

    [Fact]
    public void Truncated_headers_are_reported_not_thrown()
    {
        var frame = TestSupport.RequestFrame(KafkaApiKeys.Metadata, 12, 1, "a-client-id");
        for (var length = 0; length < frame.Length; length++)
        {
            Assert.NotEqual(MalformedReason.None, KafkaRequestHeader.TryParse(new ReadOnlySequence<byte>(frame, 0, length), out _));
        }

        var lying = new WireWriter().Int16(3).Int16(4).Int32(1).Int16(30000).Raw([1, 2, 3]).ToFrame();
        Assert.Equal(MalformedReason.Truncated, KafkaRequestHeader.TryParse(new ReadOnlySequence<byte>(lying), out _));
    }

    public static TheoryData<short, string?, short> ProduceCases()
    {
        var data = new TheoryData<short, string?, short>();
        for (short v = 0; v <= 11; v++)
        {
            data.Add(v, null, 0);
            data.Add(v, "txn-1", 0);
            data.Add(v, null, -1);
            data.Add(v, "txn-2", 1);
        }

        return data;
    }

    [Theory]
    [MemberData(nameof(ProduceCases))]
    public void Produce_acks_are_read_at_every_version(short version, string? transactionalId, short acks)
    {
        var flexible = version >= 9;
        var frame = TestSupport.RequestFrame(KafkaApiKeys.Produce, version, 5, "producer", w =>
        {
            if (version >= 3)
            {
                w.String(flexible, transactionalId);
            }

            w.Int16(acks).Int32(30000).ArrayCount(flexible, 0);
        });

        var sequence = TestSupport.ByteByByte(frame);
        Assert.Equal(MalformedReason.None, KafkaRequestHeader.TryParse(sequence, out var header));
        Assert.Equal(MalformedReason.None, ProduceRequestInspector.TryReadAcks(sequence, header, out var read));
        Assert.Equal(acks, read);

        var tracker = new CorrelationTracker(4);
        var status = tracker.TrackRequest(sequence, out _);
        Assert.Equal(acks == 0 ? TrackStatus.NoResponseExpected : TrackStatus.Tracked, status);
        Assert.Equal(acks == 0 ? 0 : 1, tracker.Count);
    }

    [Fact]
    public void Tracker_takes_each_response_once_with_many_in_flight()
    {
        var tracker = new CorrelationTracker(100);
        for (var i = 0; i < 50; i++)
        {
            Assert.Equal(TrackStatus.Tracked, tracker.Track(i, KafkaApiKeys.Metadata, (short)(i % 13)));
        }

        for (var i = 49; i >= 0; i--)
        {
            Assert.True(tracker.TryTake(i, out var request));
            Assert.Equal(new InFlightRequest(KafkaApiKeys.Metadata, (short)(i % 13)), request);
            Assert.False(tracker.TryTake(i, out _));
        }

        Assert.Equal(0, tracker.Count);
    }

    [Fact]
    public void Tracker_is_bounded_and_rejects_duplicates()
    {
        var tracker = new CorrelationTracker(2);
        Assert.Equal(TrackStatus.Tracked, tracker.Track(1, KafkaApiKeys.Fetch, 16));
        Assert.Equal(TrackStatus.DuplicateCorrelationId, tracker.Track(1, KafkaApiKeys.Fetch, 16));
        Assert.Equal(TrackStatus.Tracked, tracker.Track(2, KafkaApiKeys.Fetch, 16));
        Assert.Equal(TrackStatus.TooManyInFlight, tracker.Track(3, KafkaApiKeys.Fetch, 16));
        Assert.True(tracker.TryTake(1, out _));
        Assert.Equal(TrackStatus.Tracked, tracker.Track(3, KafkaApiKeys.Fetch, 16));
    }

    [Fact]
    public void Tracker_reports_malformed_requests()
    {
        var tracker = new CorrelationTracker(2);
        Assert.Equal(TrackStatus.Malformed, tracker.TrackRequest(new ReadOnlySequence<byte>(new byte[6]), out _));
    }

    [Fact]
    public async Task Tracker_is_safe_with_a_request_pump_and_a_response_pump()
    {
        var tracker = new CorrelationTracker(64);
        const int Count = 20000;
        // Own threads, yielding while blocked: spinning pool threads would starve other tests.
        var producer = Task.Factory.StartNew(() =>
        {
            var spin = default(SpinWait);
            for (var i = 0; i < Count;)
            {
                if (tracker.Track(i, KafkaApiKeys.Produce, 10) == TrackStatus.Tracked)
                {
                    i++;
                }
                else
                {
                    spin.SpinOnce();
                }
            }
        }, TestContext.Current.CancellationToken, TaskCreationOptions.LongRunning, TaskScheduler.Default);
        var consumer = Task.Factory.StartNew(() =>
        {
            var spin = default(SpinWait);
            for (var i = 0; i < Count;)
            {
                if (tracker.TryTake(i, out _))
                {
                    i++;
                }
                else
                {
                    spin.SpinOnce();
                }
            }
        }, TestContext.Current.CancellationToken, TaskCreationOptions.LongRunning, TaskScheduler.Default);
        await Task.WhenAll(producer, consumer).WaitAsync(TimeSpan.FromSeconds(30), TestContext.Current.CancellationToken);
        Assert.Equal(0, tracker.Count);
    }
}
