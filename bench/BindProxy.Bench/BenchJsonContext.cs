using System.Text.Json.Serialization;
using BindProxy.Bench.Load;
using BindProxy.Bench.Measurement;
using BindProxy.Bench.Soak;

namespace BindProxy.Bench;

/// <summary>One-line JSON output of every measuring subcommand, in snake_case for scripts.</summary>
[JsonSourceGenerationOptions(PropertyNamingPolicy = JsonKnownNamingPolicy.SnakeCaseLower)]
[JsonSerializable(typeof(PingPongResult))]
[JsonSerializable(typeof(KafkaPingResult))]
[JsonSerializable(typeof(ChurnResult))]
[JsonSerializable(typeof(FairnessResult))]
[JsonSerializable(typeof(StormResult))]
[JsonSerializable(typeof(HoldResult))]
[JsonSerializable(typeof(ProcStatResult))]
[JsonSerializable(typeof(SoakSample))]
[JsonSerializable(typeof(SoakRow))]
[JsonSerializable(typeof(SoakSummary))]
internal sealed partial class BenchJsonContext : JsonSerializerContext;

/// <summary>A <see cref="TreeSample"/> as printed by the <c>procstat</c> subcommand.</summary>
internal sealed record ProcStatResult(string Test, int Pid, int Processes, double CpuSeconds, long RssKb, long PssKb);
