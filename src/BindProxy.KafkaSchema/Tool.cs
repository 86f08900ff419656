using System.Diagnostics;

namespace BindProxy.KafkaSchema;

/// <summary>The commands' work: where the files are, and writing them.</summary>
internal static class Tool
{
    public const string SchemaFile = "src/BindProxy.KafkaSchema/kafka-protocol.schema";
    public const string SupplementFile = "src/BindProxy.KafkaSchema/" + Supplement.FileName;
    public const string OutputDirectory = "src/BindProxy/Kafka/Protocol";

    public static int Import(DirectoryInfo kafka, string? source, DirectoryInfo? repo)
    {
        var root = RepositoryRoot(repo);
        if (!Directory.Exists(Path.Combine(kafka.FullName, KafkaJsonImporter.MessagesPath)))
        {
            Console.Error.WriteLine($"import: {kafka.FullName} has no {KafkaJsonImporter.MessagesPath}; give a checkout of apache/kafka");
            return 2;
        }

        var schema = KafkaJsonImporter.Import(kafka.FullName, source ?? Describe(kafka.FullName));
        var supplement = Path.Combine(root, SupplementFile);
        var applied = 0;
        if (File.Exists(supplement))
        {
            schema = Supplement.Apply(schema, File.ReadAllText(supplement), out applied);
            if (applied > 0)
            {
                schema = schema with { Source = $"{schema.Source}, with {Supplement.FileName}" };
            }
        }

        File.WriteAllText(Path.Combine(root, SchemaFile), SchemaText.Write(schema));
        Console.WriteLine($"{SchemaFile}: {schema.Messages.Count} messages, {schema.Errors.Count} error codes, from {schema.Source} ({applied} supplement entries applied)");
        return 0;
    }

    public static int Generate(DirectoryInfo? repo)
    {
        var root = RepositoryRoot(repo);
        var schema = SchemaText.Parse(File.ReadAllText(Path.Combine(root, SchemaFile)));
        var output = Path.Combine(root, OutputDirectory);
        var files = CSharpGenerator.Generate(schema);
        var messages = Path.Combine(output, "Messages");
        Directory.CreateDirectory(messages);
        var keep = files.Select(f => Path.GetFullPath(Path.Combine(output, f.Path))).ToHashSet(StringComparer.Ordinal);
        foreach (var stale in Directory.GetFiles(messages, "*.g.cs").Where(f => !keep.Contains(Path.GetFullPath(f))))
        {
            File.Delete(stale);
        }

        foreach (var (path, content) in files)
        {
            File.WriteAllText(Path.Combine(output, path), content);
        }

        Console.WriteLine($"{OutputDirectory}: {files.Count} files from {SchemaFile}");
        return 0;
    }

    /// <summary>"apache/kafka COMMIT VERSION" from the checkout's git head and gradle.properties.</summary>
    private static string Describe(string kafka)
    {
        var version = File.Exists(Path.Combine(kafka, "gradle.properties"))
            ? File.ReadLines(Path.Combine(kafka, "gradle.properties")).FirstOrDefault(l => l.StartsWith("version=", StringComparison.Ordinal))?["version=".Length..]
            : null;
        string? commit = null;
        try
        {
            using var git = Process.Start(new ProcessStartInfo("git", ["-C", kafka, "rev-parse", "HEAD"]) { RedirectStandardOutput = true, RedirectStandardError = true });
            commit = git?.StandardOutput.ReadToEnd().Trim();
            git?.WaitForExit();
        }
        catch (System.ComponentModel.Win32Exception)
        {
        }

        return $"apache/kafka {(string.IsNullOrEmpty(commit) ? "unknown-commit" : commit)} {version ?? "unknown-version"}";
    }

    private static string RepositoryRoot(DirectoryInfo? given)
    {
        for (var dir = given ?? new DirectoryInfo(Environment.CurrentDirectory); dir is not null; dir = dir.Parent)
        {
            if (File.Exists(Path.Combine(dir.FullName, "BindProxy.sln")))
            {
                return dir.FullName;
            }
        }

        throw new InvalidOperationException("BindProxy.sln not found above the current directory; pass --repo.");
    }
}
