using System.CommandLine;
using BindProxy.KafkaSchema;

// Regenerates BindProxy's Kafka protocol model.
//   import   a Kafka checkout's message definitions and error codes -> kafka-protocol.schema
//   generate kafka-protocol.schema -> src/BindProxy/Kafka/Protocol/{Messages/*.g.cs, KafkaApis.g.cs, KafkaErrors.g.cs}
//   update   both, the one command for a new Kafka release
var kafka = new Option<DirectoryInfo>("--kafka") { Description = "A checkout of apache/kafka (the release to take the protocol from).", Required = true };
var source = new Option<string?>("--source") { Description = "What the checkout is, for the schema's source line (default: its git commit and gradle version)." };
var root = new Option<DirectoryInfo?>("--repo") { Description = "BindProxy's repository root (default: found from the current directory)." };

var import = new Command("import", "Read a Kafka checkout and write the compact schema.") { kafka, source, root };
import.SetAction(parse => Tool.Import(parse.GetValue(kafka)!, parse.GetValue(source), parse.GetValue(root)));
var generate = new Command("generate", "Write the C# model from the compact schema.") { root };
generate.SetAction(parse => Tool.Generate(parse.GetValue(root)));
var update = new Command("update", "import, then generate.") { kafka, source, root };
update.SetAction(parse => Tool.Import(parse.GetValue(kafka)!, parse.GetValue(source), parse.GetValue(root)) is var code && code != 0 ? code : Tool.Generate(parse.GetValue(root)));

var command = new RootCommand("Generates BindProxy's Kafka protocol model from Kafka's message definitions.") { import, generate, update };
return await command.Parse(args).InvokeAsync();
