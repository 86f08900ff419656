using System.Buffers.Binary;
using System.Text;
using BindProxy.KafkaSchema;

namespace BindProxy.Tests.Kafka;

/// <summary>
/// Encodes random but valid bodies of any message at any version straight from the schema the model
/// was generated from, without the generated code: every field present at the version, nullable ones
/// sometimes null, arrays of 0-3 elements, known tagged fields sometimes present (at their default
/// too) and unknown tagged fields between them. What the model must read and write back unchanged.
/// </summary>
internal sealed class SchemaEncoder(MessageDef message, Random random)
{
    private readonly Dictionary<string, IReadOnlyList<FieldDef>> _structs = Structs(message);

    public static ProtocolSchema Schema { get; } = SchemaText.Parse(File.ReadAllText(Path.Combine(RepositoryRoot(), "src/BindProxy.KafkaSchema/kafka-protocol.schema")));

    public byte[] Body(short version)
    {
        var w = new List<byte>();
        Struct(w, message.Fields, version, depth: 0);
        return [.. w];
    }

    private bool Flexible(short version) => message.FlexibleVersions.Contains(version);

    private void Struct(List<byte> w, IReadOnlyList<FieldDef> fields, short version, int depth)
    {
        foreach (var f in fields)
        {
            if (f.Versions.Contains(version) && !(f.IsTagged && f.TaggedVersions.Contains(version)))
            {
                Value(w, f, version, compact: Flexible(version) && (f.FlexibleVersions is not { } own || own.Contains(version)), depth);
            }
        }

        if (!Flexible(version))
        {
            return;
        }

        var tagged = new SortedDictionary<uint, byte[]>();
        foreach (var f in fields.Where(f => f.IsTagged && f.TaggedVersions.Contains(version) && f.Versions.Contains(version)))
        {
            if (random.Next(2) == 0)
            {
                var content = new List<byte>();
                Value(content, f, version, compact: true, depth);
                tagged[(uint)f.Tag!.Value] = [.. content];
            }
        }

        var known = fields.Where(f => f.IsTagged).Select(f => (uint)f.Tag!.Value).ToHashSet();
        for (var i = random.Next(3); i > 0; i--)
        {
            var tag = (uint)random.Next(0, 40);
            if (!known.Contains(tag))
            {
                tagged[tag] = RandomBytes(random.Next(0, 6));
            }
        }

        UVarint(w, (uint)tagged.Count);
        foreach (var (tag, content) in tagged)
        {
            UVarint(w, tag);
            UVarint(w, (uint)content.Length);
            w.AddRange(content);
        }
    }

    private void Value(List<byte> w, FieldDef f, short version, bool compact, int depth)
    {
        var nullable = f.NullableVersions.Contains(version);
        if (f.IsArray)
        {
            if (nullable && random.Next(4) == 0)
            {
                Length(w, -1, compact, wide: true);
                return;
            }

            var count = depth > 3 ? 0 : random.Next(0, 4);
            Length(w, count, compact, wide: true);
            for (var i = 0; i < count; i++)
            {
                if (f.IsStruct)
                {
                    Struct(w, _structs[f.ElementType], version, depth + 1);
                }
                else
                {
                    Scalar(w, f.ElementType, version, compact, nullable: false);
                }
            }

            return;
        }

        if (f.IsStruct)
        {
            if (nullable)
            {
                var isNull = random.Next(3) == 0;
                w.Add(isNull ? (byte)0xFF : (byte)1);
                if (isNull)
                {
                    return;
                }
            }

            Struct(w, _structs[f.ElementType], version, depth + 1);
            return;
        }

        Scalar(w, f.Type, version, compact, nullable);
    }

    private void Scalar(List<byte> w, string type, short version, bool compact, bool nullable)
    {
        switch (type)
        {
            case "bool":
                w.Add((byte)random.Next(2));
                break;
            case "int8":
                w.AddRange(RandomBytes(1));
                break;
            case "int16" or "uint16":
                w.AddRange(RandomBytes(2));
                break;
            case "int32" or "uint32":
                w.AddRange(RandomBytes(4));
                break;
            case "int64":
                w.AddRange(RandomBytes(8));
                break;
            case "float64":
                var bits = new byte[8];
                BinaryPrimitives.WriteInt64BigEndian(bits, BitConverter.DoubleToInt64Bits(random.NextDouble() * 1e6));
                w.AddRange(bits);
                break;
            case "uuid":
                w.AddRange(RandomBytes(16));
                break;
            case "string":
                if (nullable && random.Next(4) == 0)
                {
                    Length(w, -1, compact, wide: false);
                    break;
                }

                var text = Encoding.UTF8.GetBytes(string.Concat(Enumerable.Range(0, random.Next(0, 12)).Select(_ => "ab.-_é€7"[random.Next(8)])));
                Length(w, text.Length, compact, wide: false);
                w.AddRange(text);
                break;
            case "bytes" or "records":
                if (nullable && random.Next(4) == 0)
                {
                    Length(w, -1, compact, wide: true);
                    break;
                }

                var bytes = RandomBytes(random.Next(0, 20));
                Length(w, bytes.Length, compact, wide: true);
                w.AddRange(bytes);
                break;
            default:
                throw new InvalidOperationException($"type {type} at v{version}");
        }
    }

    private static void Length(List<byte> w, int length, bool compact, bool wide)
    {
        if (compact)
        {
            UVarint(w, (uint)(length + 1));
            return;
        }

        var bytes = new byte[wide ? 4 : 2];
        if (wide)
        {
            BinaryPrimitives.WriteInt32BigEndian(bytes, length);
        }
        else
        {
            BinaryPrimitives.WriteInt16BigEndian(bytes, (short)length);
        }

        w.AddRange(bytes);
    }

    private static void UVarint(List<byte> w, uint value)
    {
        while (value >= 0x80)
        {
            w.Add((byte)(value | 0x80));
            value >>= 7;
        }

        w.Add((byte)value);
    }

    private byte[] RandomBytes(int count)
    {
        var bytes = new byte[count];
        random.NextBytes(bytes);
        return bytes;
    }

    private static Dictionary<string, IReadOnlyList<FieldDef>> Structs(MessageDef message)
    {
        var structs = message.CommonStructs.ToDictionary(s => s.Name, s => s.Fields, StringComparer.Ordinal);
        void Collect(IReadOnlyList<FieldDef> fields)
        {
            foreach (var f in fields.Where(f => f.IsStruct && f.Fields.Count > 0))
            {
                structs.TryAdd(f.ElementType, f.Fields);
                Collect(f.Fields);
            }
        }

        Collect(message.Fields);
        return structs;
    }

    private static string RepositoryRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            if (File.Exists(Path.Combine(dir.FullName, "BindProxy.sln")))
            {
                return dir.FullName;
            }
        }

        throw new InvalidOperationException("BindProxy.sln not found above the test binaries");
    }
}
