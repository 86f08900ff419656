using System.Buffers;
using BindProxy.Kafka.Conversation;
using BindProxy.Kafka.Framing;
using BindProxy.Kafka.Protocol;
using BindProxy.Kafka.Rewriting;

namespace BindProxy.Tests.Kafka;

/// <summary>
/// Seeded mutation fuzzing: valid responses and requests with bytes flipped, lengths forged, cuts
/// and insertions, through the rewriter, the generated model (every API's request and response) and
/// the conversation's decoder (the model plus the summary of topics, errors and record batches,
/// and the reader of Produce requests streamed through). Nothing may throw, and nothing may allocate in proportion to a length read off the wire rather
/// than to the frame itself.
/// </summary>
public sealed class FuzzTests
{
    /// <summary>
    /// 200,000 mutated frames per run (a few seconds); a long run sets
    /// <c>BINDPROXY_FUZZ_ITERATIONS</c> (e.g. 50000000) and a fresh <c>BINDPROXY_FUZZ_SEED</c>.
    /// </summary>
    private static readonly int Iterations = int.TryParse(Environment.GetEnvironmentVariable("BINDPROXY_FUZZ_ITERATIONS"), out var n) && n > 0 ? n : 200_000;

    private static readonly int Seed = int.TryParse(Environment.GetEnvironmentVariable("BINDPROXY_FUZZ_SEED"), out var s) ? s : 20240611;

    // Generous: host strings, the edit list and the output all scale with the frame, by a small factor.
    private const long FixedAllowance = 32 * 1024;
    private const long PerFrameByteAllowance = 160;

    // A whole body built by the model: an object and a list per struct, a string per string field.
    // Every array count is checked against the bytes left times its element's smallest wire size,
    // so what is built stays in proportion to the frame whatever a forged count says.
    private const long ModelPerFrameByteAllowance = 400;

    private static readonly TopicNames Names = new();

    private static readonly byte[] ForgedBytes = [0xFF, 0x7F, 0x80, 0x00];

    private static readonly (short Key, short Version, byte[] Frame)[] Seeds = BuildSeeds();

    private static (short, short, byte[])[] BuildSeeds()
    {
        var seeds = new List<(short, short, byte[])>();
        foreach (var row in RewriterRoundTripTests.Cases())
        {
            var key = row.Data.Item1;
            var version = row.Data.Item2;
            var count = row.Data.Item3;
            if (count == 3)
            {
                seeds.Add((key, version, RewriterRoundTripTests.Encode(key, version, ResponseEncoders.Brokers(count))));
            }
        }

        // Every API's request and response at its newest version, encoded from the schema: the
        // generated readers see the same mutations as the rewriter.
        var random = new Random(7);
        foreach (var message in SchemaEncoder.Schema.Messages.Where(m => m.ApiKey is not null))
        {
            var version = message.ValidVersions.Max;
            var api = KafkaApis.Of(message.ApiKey!.Value);
            var w = new WireWriter();
            if (message.Kind == "request")
            {
                w.Int16(api.Key).Int16(version).Int32(1).String(false, "fuzz");
                if (api.RequestHeaderVersion(version) >= 2)
                {
                    w.Tags(null);
                }
            }
            else
            {
                w.Int32(1);
                if (api.ResponseHeaderVersion(version) >= 1)
                {
                    w.Tags(null);
                }
            }

            seeds.Add((api.Key, (short)(message.Kind == "request" ? -1 - version : version), w.Raw(new SchemaEncoder(message, random).Body(version)).ToFrame()));
        }

        // Record batches in the fields that hold them, so the batch header reader is mutated too.
        var batches = RecordFrames.Batches(0, (3, 40, 0), (1, 10, 0x0004), (2, 0, 0x0020));
        foreach (short version in new short[] { 3, 7, 9, 11 })
        {
            seeds.Add((KafkaApiKeys.Produce, (short)(-1 - version), RecordFrames.Produce(version, 1, version >= 3 ? "txn" : null, ("orders", [(0, batches), (1, null)]), ("audit", [(4, batches[..50])]))));
        }

        foreach (short version in new short[] { 4, 11, 12, 16 })
        {
            seeds.Add((KafkaApiKeys.Fetch, version, RecordFrames.Fetch(version, 1, ("orders", [(0, batches), (1, batches[..70])]))));
        }

        var apiVersions = new WireWriter().Int32(1).Int16(0).ArrayCount(true, 2)
            .Int16(0).Int16(3).Int16(12).Tags(null).Int16(3).Int16(0).Int16(14).Tags(null).Int32(0).Tags(null).ToFrame();
        seeds.Add((KafkaApiKeys.ApiVersions, 3, apiVersions));
        return [.. seeds];
    }

    [Fact]
    public void Mutated_frames_never_throw_nor_allocate_by_forged_lengths()
    {
        var random = new Random(Seed);
        var mapper = new TestMapper();
        for (var i = 0; i < Iterations; i++)
        {
            var (key, version, seed) = Seeds[random.Next(Seeds.Length)];
            var frame = Mutate(seed, random);
            var sequence = random.Next(4) == 0
                ? TestSupport.Segmented(frame, Enumerable.Range(0, 3).Select(_ => random.Next(frame.Length + 1)))
                : new ReadOnlySequence<byte>(frame);

            var output = new ArrayBufferWriter<byte>(frame.Length + 4096);
            var before = GC.GetAllocatedBytesForCurrentThread();

            // A request seed carries its version as -1 - version.
            if (version < 0)
            {
                ReadWithModel(sequence, key, (short)(-1 - version), request: true);
                if (KafkaRequestHeader.TryParse(sequence, out var header) == MalformedReason.None)
                {
                    _ = ExchangeDecoder.Request(sequence, header, Names, out _);
                    if (header.ApiKey == KafkaApiKeys.Produce && KafkaApis.Of(header.ApiKey).Knows(header.ApiVersion))
                    {
                        // As if streamed through: in pieces, the frame's length taken from its (mutated) size prefix.
                        var streamed = new StreamedProduceReader(header, sequence.Length);
                        long cut = random.NextInt64(sequence.Length + 1);
                        streamed.Feed(sequence.Slice(0, cut));
                        streamed.Feed(sequence.Slice(cut));
                        _ = streamed.ToBody(Names, out _);
                    }
                }

                var allocatedByRequest = GC.GetAllocatedBytesForCurrentThread() - before;
                Assert.True(
                    allocatedByRequest <= FixedAllowance + (ModelPerFrameByteAllowance * frame.Length),
                    $"iteration {i}: {allocatedByRequest} bytes allocated reading a {frame.Length}-byte request (api {key})");
                continue;
            }

            ReadWithModel(sequence, key, version, request: false);
            _ = ExchangeDecoder.Response(sequence, key, version, Names, out _);
            var allocatedByModel = GC.GetAllocatedBytesForCurrentThread() - before;
            Assert.True(
                allocatedByModel <= FixedAllowance + (ModelPerFrameByteAllowance * frame.Length),
                $"iteration {i}: {allocatedByModel} bytes allocated reading a {frame.Length}-byte response (api {key} v{version})");
            before = GC.GetAllocatedBytesForCurrentThread();
            var result = KafkaResponseRewriter.TryRewrite(sequence, key, version, mapper, output);
            _ = KafkaRequestHeader.TryParse(sequence, out _);
            var buffer = sequence;
            _ = KafkaFrameReader.TryReadFrame(ref buffer, 1 << 20, out _, out _);
            var allocated = GC.GetAllocatedBytesForCurrentThread() - before;

            Assert.True(
                allocated <= FixedAllowance + (PerFrameByteAllowance * frame.Length),
                $"iteration {i}: {allocated} bytes allocated for a {frame.Length}-byte frame (api {key} v{version})");
            if (result.Status == RewriteStatus.Rewritten)
            {
                var written = output.WrittenSpan;
                Assert.Equal(written.Length - 4, System.Buffers.Binary.BinaryPrimitives.ReadInt32BigEndian(written));
            }
        }
    }

    [Theory]
    [InlineData(KafkaApiKeys.Metadata, 12)]
    [InlineData(KafkaApiKeys.Metadata, 1)]
    [InlineData(KafkaApiKeys.DescribeCluster, 2)]
    [InlineData(KafkaApiKeys.Fetch, 16)]
    public void Forged_huge_counts_are_rejected_cheaply(short apiKey, short version)
    {
        var flexible = version >= 9 || apiKey == KafkaApiKeys.DescribeCluster;
        var w = new WireWriter().Int32(1);
        if (flexible)
        {
            w.Tags(null);
        }

        if (apiKey == KafkaApiKeys.Metadata && version >= 3)
        {
            w.Int32(0);
        }

        if (apiKey == KafkaApiKeys.DescribeCluster)
        {
            w.Int32(0).Int16(0).String(true, null).Int8(1).String(true, "c").Int32(1);
        }

        if (apiKey == KafkaApiKeys.Fetch)
        {
            w.Int32(0).Int16(0).Int32(0);
        }

        // int.MaxValue elements, announced by a few bytes.
        w = flexible ? w.UVarint(int.MaxValue) : w.Int32(int.MaxValue);
        var frame = w.Raw([0, 0, 0, 1]).ToFrame();

        var before = GC.GetAllocatedBytesForCurrentThread();
        var (result, _) = TestSupport.Rewrite(frame, apiKey, version, new TestMapper());
        var allocated = GC.GetAllocatedBytesForCurrentThread() - before;
        Assert.Equal(RewriteResult.Malformed(MalformedReason.CountExceedsRemaining), result);
        Assert.True(allocated < FixedAllowance, $"{allocated} bytes allocated");
    }

    /// <summary>The whole frame through the generated model, as a request or as a response to (key, version).</summary>
    private static void ReadWithModel(in ReadOnlySequence<byte> frame, short key, short version, bool request)
    {
        var api = KafkaApis.Of(key);
        var reader = new KafkaReader(frame);
        reader.Skip(4);
        if (request)
        {
            _ = new BindProxy.Kafka.Protocol.Messages.RequestHeaderData().TryRead(ref reader, api.RequestHeaderVersion(version))
                && KafkaApis.CreateRequest(key)!.TryRead(ref reader, version);
        }
        else
        {
            _ = new BindProxy.Kafka.Protocol.Messages.ResponseHeaderData().TryRead(ref reader, api.ResponseHeaderVersion(version))
                && KafkaApis.CreateResponse(key)!.TryRead(ref reader, version);
        }
    }

    private static byte[] Mutate(byte[] seed, Random random)
    {
        var data = seed.ToList();
        var mutations = 1 + random.Next(4);
        for (var m = 0; m < mutations && data.Count > 0; m++)
        {
            var at = random.Next(data.Count);
            switch (random.Next(7))
            {
                case 0:
                    data[at] ^= (byte)(1 << random.Next(8));
                    break;
                case 1:
                    data[at] = (byte)random.Next(256);
                    break;
                case 2:
                    // Forge a length-like value: max varint byte, max int16/int32 high byte, or -1.
                    data[at] = ForgedBytes[random.Next(ForgedBytes.Length)];
                    break;
                case 3:
                    data.RemoveRange(at, data.Count - at);
                    break;
                case 4:
                    data.InsertRange(at, Enumerable.Range(0, 1 + random.Next(8)).Select(_ => (byte)random.Next(256)));
                    break;
                case 5:
                    data.RemoveAt(at);
                    break;
                default:
                    // Keep the size prefix honest sometimes, so the body parser is what gets exercised.
                    break;
            }
        }

        var frame = data.ToArray();
        if (frame.Length >= 4 && random.Next(2) == 0)
        {
            System.Buffers.Binary.BinaryPrimitives.WriteInt32BigEndian(frame, frame.Length - 4);
        }

        return frame;
    }
}
