using System.Buffers;
using System.Collections;
using System.Collections.Concurrent;
using System.Reflection;
using BindProxy.Kafka.Protocol;

namespace BindProxy.Kafka.Faults;

/// <summary>
/// The Kafka toxics' work on message bodies, through the generated model and without code per API:
/// which topics a request names, a response made up for a request (an error on each of its topics
/// and partitions), and an error code or throttle time written into a broker's response.
/// </summary>
/// <remarks>
/// The generated messages are plain classes whose properties follow Kafka's field names, so the
/// shapes that matter are found by name once per type and cached: a topic is an element with
/// <c>Name</c>, <c>Topic</c>, <c>TopicName</c> or <c>TopicId</c> (a <c>Name</c> only in a list
/// named for topics or holding partitions); a partition is an element with <c>PartitionIndex</c>,
/// <c>Partition</c>, <c>Index</c> or <c>PartitionId</c>; <c>ErrorCode</c> and <c>ThrottleTimeMs</c>
/// are what they say. Only requests and responses a toxic hits come here.
/// </remarks>
internal static class KafkaFaultMessages
{
    private static readonly ConcurrentDictionary<Type, Shape> s_shapes = new();
    private static readonly string[] s_partitionIds = ["PartitionIndex", "Partition", "Index", "PartitionId"];
    private static readonly string[] s_topicNames = ["Topic", "TopicName", "Name"];

    /// <summary>The request body of a whole request <paramref name="frame"/>; null when the model does not know its version or cannot read it.</summary>
    public static IKafkaMessage? ReadRequest(in ReadOnlySequence<byte> frame, in KafkaRequestHeader header)
    {
        if (!KafkaApis.Of(header.ApiKey).Knows(header.ApiVersion) || KafkaApis.CreateRequest(header.ApiKey) is not { } message)
        {
            return null;
        }

        var reader = new KafkaReader(frame);
        return reader.Skip(header.BodyOffset) && message.TryRead(ref reader, header.ApiVersion) && reader.End ? message : null;
    }

    /// <summary>The topics a request names, by name or id (whichever its version carries).</summary>
    public static List<TopicRef> Topics(IKafkaMessage request)
    {
        var topics = new List<TopicRef>();
        CollectTopics(request, topics, 0);
        return topics;
    }

    /// <summary>
    /// A response to <paramref name="request"/> (of <paramref name="apiKey"/> at <paramref name="version"/>),
    /// framed with <paramref name="correlationId"/>: <paramref name="error"/> on every topic and
    /// partition the request names and in every error code outside them; null when the model does
    /// not know the version.
    /// </summary>
    public static byte[]? Answer(IKafkaMessage request, short apiKey, short version, int correlationId, KafkaError error)
    {
        if (!KafkaApis.Of(apiKey).Knows(version) || KafkaApis.CreateResponse(apiKey) is not { } response)
        {
            return null;
        }

        Fill(response, request, error, 0);
        return Frame(response, apiKey, version, correlationId);
    }

    /// <summary>
    /// The response <paramref name="frame"/> (of <paramref name="apiKey"/> at <paramref name="version"/>)
    /// with <paramref name="error"/> set on the topics <paramref name="topicHit"/> accepts (their
    /// partitions included) and, when <paramref name="everywhere"/>, on every other error code too;
    /// and <paramref name="throttleMs"/> as its throttle time. Null when it cannot be read, or has
    /// no such field to change.
    /// </summary>
    public static byte[]? Edit(in ReadOnlySequence<byte> frame, short apiKey, short version, KafkaError? error, Func<TopicRef, bool> topicHit, bool everywhere, int? throttleMs)
    {
        if (!KafkaApis.Of(apiKey).Knows(version) || KafkaApis.CreateResponse(apiKey) is not { } response)
        {
            return null;
        }

        var reader = new KafkaReader(frame);
        if (!reader.ReadInt32(out _) || !reader.ReadInt32(out int correlationId))
        {
            return null;
        }

        reader = new KafkaReader(frame);
        if (!KafkaResponseHeader.TrySkip(ref reader, apiKey, version) || !response.TryRead(ref reader, version) || !reader.End)
        {
            return null;
        }

        int changed = 0;
        if (throttleMs is { } ms && Of(response.GetType()).Throttle is { } throttle)
        {
            throttle.SetValue(response, ms);
            changed++;
        }

        if (error is { } e)
        {
            changed += Mark(response, e, topicHit, everywhere, scoped: false, 0);
        }

        return changed > 0 ? Frame(response, apiKey, version, correlationId) : null;
    }

    /// <summary>Writes <paramref name="response"/> as a whole frame: size, response header, body.</summary>
    public static byte[] Frame(IKafkaMessage response, short apiKey, short version, int correlationId)
    {
        var writer = new KafkaWriter();
        int size = writer.ReserveInt32();
        writer.WriteInt32(correlationId);
        if (KafkaApis.Of(apiKey).ResponseHeaderVersion(version) >= 1)
        {
            writer.WriteUVarint(0); // no tagged fields in the header
        }

        response.Write(writer, version);
        writer.PatchInt32(size, writer.Length - 4);
        return writer.ToArray();
    }

    // ---- requests ------------------------------------------------------------------------------

    private const int MaxDepth = 8;

    private static void CollectTopics(object node, List<TopicRef> topics, int depth)
    {
        if (depth > MaxDepth)
        {
            return;
        }

        var shape = Of(node.GetType());
        foreach (var list in shape.Lists)
        {
            if (list.Property.GetValue(node) is not IList items)
            {
                continue;
            }

            bool topicLike = list.IsTopics;
            foreach (var item in items)
            {
                if (topicLike)
                {
                    topics.Add(Of(item!.GetType()).TopicOf(item));
                }
                else
                {
                    CollectTopics(item!, topics, depth + 1);
                }
            }
        }

        foreach (var names in shape.TopicNameLists)
        {
            if (names.GetValue(node) is List<string> given)
            {
                topics.AddRange(given.Select(n => new TopicRef(n, Guid.Empty)));
            }
        }
    }

    /// <summary>The topics directly under a request node: its topic list (or list of topic names), with each one's partitions.</summary>
    private static List<(TopicRef Topic, object? Node)> TopicsUnder(object? node, string preferredList)
    {
        var found = new List<(TopicRef, object?)>();
        if (node is null)
        {
            return found;
        }

        var shape = Of(node.GetType());
        var list = shape.Lists.FirstOrDefault(l => l.IsTopics && l.Property.Name == preferredList)
            ?? shape.Lists.FirstOrDefault(l => l.IsTopics && !l.Property.Name.Contains("Forgotten", StringComparison.Ordinal));
        if (list?.Property.GetValue(node) is IList items)
        {
            foreach (var item in items)
            {
                found.Add((Of(item!.GetType()).TopicOf(item), item));
            }
        }
        else if (shape.TopicNameLists.FirstOrDefault()?.GetValue(node) is List<string> names)
        {
            found.AddRange(names.Select(n => (new TopicRef(n, Guid.Empty), (object?)null)));
        }

        return found;
    }

    private static List<int> PartitionsOf(object? requestTopic)
    {
        var partitions = new List<int>();
        if (requestTopic is null)
        {
            return partitions;
        }

        var shape = Of(requestTopic.GetType());
        if (shape.PartitionIndexLists.FirstOrDefault()?.GetValue(requestTopic) is List<int> indexes)
        {
            partitions.AddRange(indexes);
        }
        else if (shape.Lists.FirstOrDefault(l => l.IsPartitions)?.Property.GetValue(requestTopic) is IList items)
        {
            foreach (var item in items)
            {
                if (Of(item!.GetType()).PartitionId?.GetValue(item) is int index)
                {
                    partitions.Add(index);
                }
            }
        }

        return partitions;
    }

    // ---- answers (forward=false) --------------------------------------------------------------

    /// <summary>Fills <paramref name="response"/> from the request node it answers.</summary>
    private static void Fill(object response, object? request, KafkaError error, int depth)
    {
        var shape = Of(response.GetType());
        shape.SetError(response, error);
        foreach (var property in shape.Unknown)
        {
            property.SetValue(response, -1);
        }

        if (depth > MaxDepth)
        {
            return;
        }

        var requestShape = request is null ? null : Of(request.GetType());
        foreach (var list in shape.Lists)
        {
            var items = (IList)Activator.CreateInstance(list.Property.PropertyType)!;
            var element = Of(list.Element);
            if (list.IsTopics || (element.Name is not null && requestShape?.Lists.Any(l => l.Property.Name == list.Property.Name) != true && TopicsUnder(request, list.Property.Name).Count > 0))
            {
                foreach (var (topic, node) in TopicsUnder(request, list.Property.Name))
                {
                    var item = Activator.CreateInstance(list.Element)!;
                    element.SetTopic(item, topic);
                    Fill(item, node, error, depth + 1);
                    if (element.Lists.FirstOrDefault(l => l.IsPartitions) is { } partitionList)
                    {
                        var partitions = (IList)Activator.CreateInstance(partitionList.Property.PropertyType)!;
                        foreach (int index in PartitionsOf(node))
                        {
                            var partition = Activator.CreateInstance(partitionList.Element)!;
                            Fill(partition, null, error, depth + 2);
                            Of(partitionList.Element).PartitionId!.SetValue(partition, index);
                            partitions.Add(partition);
                        }

                        partitionList.Property.SetValue(item, partitions);
                    }

                    items.Add(item);
                }
            }
            else if (requestShape?.Lists.FirstOrDefault(l => l.Property.Name == list.Property.Name) is { } same && same.Property.GetValue(request) is IList given)
            {
                // A list of the same name in both (OffsetFetch's Groups): one answer per entry, keyed alike.
                foreach (var entry in given)
                {
                    var item = Activator.CreateInstance(list.Element)!;
                    element.CopyKeys(entry!, item);
                    Fill(item, entry, error, depth + 1);
                    items.Add(item);
                }
            }
            else if (element.Key is not null && requestShape?.StringLists.FirstOrDefault()?.GetValue(request) is List<string> keys)
            {
                // FindCoordinator v4+: a coordinator per key asked for.
                foreach (var key in keys)
                {
                    var item = Activator.CreateInstance(list.Element)!;
                    element.Key.SetValue(item, key);
                    Fill(item, null, error, depth + 1);
                    items.Add(item);
                }
            }
            else
            {
                continue; // left as the model made it (empty)
            }

            list.Property.SetValue(response, items);
        }
    }

    // ---- edits (forward=true) -----------------------------------------------------------------

    /// <summary>Sets the error in <paramref name="node"/> and below; the number of error codes set.</summary>
    private static int Mark(object node, KafkaError error, Func<TopicRef, bool> topicHit, bool everywhere, bool scoped, int depth)
    {
        var shape = Of(node.GetType());
        int changed = 0;
        if ((scoped || everywhere) && shape.ErrorCode is not null)
        {
            shape.SetError(node, error);
            changed++;
        }

        if (depth > MaxDepth)
        {
            return changed;
        }

        foreach (var list in shape.Lists)
        {
            if (list.Property.GetValue(node) is not IList items)
            {
                continue;
            }

            foreach (var item in items)
            {
                bool hit = scoped || (list.IsTopics && topicHit(Of(item!.GetType()).TopicOf(item)));
                if (hit || !list.IsTopics)
                {
                    changed += Mark(item!, error, topicHit, everywhere, hit, depth + 1);
                }
            }
        }

        return changed;
    }

    // ---- shapes -------------------------------------------------------------------------------

    private static Shape Of(Type type) => s_shapes.GetOrAdd(type, static t => new Shape(t));

    private static bool IsClassList(PropertyInfo property, out Type element)
    {
        element = typeof(object);
        if (!property.PropertyType.IsGenericType || property.PropertyType.GetGenericTypeDefinition() != typeof(List<>))
        {
            return false;
        }

        element = property.PropertyType.GetGenericArguments()[0];
        return element.IsClass && element != typeof(string);
    }

    private static bool IsListOf<T>(PropertyInfo property) => property.PropertyType == typeof(List<T>);

    private sealed record ListShape(PropertyInfo Property, Type Element, bool IsTopics, bool IsPartitions);

    /// <summary>What one generated type holds, by name.</summary>
    private sealed class Shape
    {
        public Shape(Type type)
        {
            var properties = type.GetProperties(BindingFlags.Public | BindingFlags.Instance).Where(p => p.CanRead && p.CanWrite).ToArray();
            PropertyInfo? Find(string name, Type of) => properties.FirstOrDefault(p => p.Name == name && p.PropertyType == of);

            ErrorCode = Find("ErrorCode", typeof(short));
            ErrorMessage = Find("ErrorMessage", typeof(string));
            Throttle = Find("ThrottleTimeMs", typeof(int));
            TopicId = Find("TopicId", typeof(Guid));
            Key = Find("Key", typeof(string));
            Name = s_topicNames.Select(n => Find(n, typeof(string))).FirstOrDefault(p => p is not null);
            PartitionId = s_partitionIds.Select(n => Find(n, typeof(int))).FirstOrDefault(p => p is not null);
            Unknown = [.. properties.Where(p => p.PropertyType == typeof(int) && p.Name is "NodeId" or "LeaderId")];
            Keys = [.. properties.Where(p => p.PropertyType == typeof(string) && p.Name.EndsWith("Id", StringComparison.Ordinal))];
            TopicNameLists = [.. properties.Where(p => IsListOf<string>(p) && p.Name.Contains("Topic", StringComparison.Ordinal))];
            StringLists = [.. properties.Where(IsListOf<string>)];
            PartitionIndexLists = [.. properties.Where(p => IsListOf<int>(p) && p.Name.StartsWith("Partition", StringComparison.Ordinal))];
            Lists = [.. properties.Where(p => IsClassList(p, out var e) && e != typeof(RawTaggedField)).Select(p =>
            {
                IsClassList(p, out var element);
                var props = element.GetProperties(BindingFlags.Public | BindingFlags.Instance);
                bool named(string n, Type t) => props.Any(q => q.Name == n && q.PropertyType == t);
                bool partitions = s_partitionIds.Any(n => named(n, typeof(int)));
                bool holdsPartitions = props.Any(q => IsListOf<int>(q) && q.Name.StartsWith("Partition", StringComparison.Ordinal))
                    || props.Any(q => IsClassList(q, out var inner) && inner.GetProperties().Any(r => s_partitionIds.Contains(r.Name) && r.PropertyType == typeof(int)));
                bool topics = named("Topic", typeof(string)) || named("TopicName", typeof(string)) || named("TopicId", typeof(Guid))
                    || (named("Name", typeof(string)) && (p.Name.Contains("Topic", StringComparison.Ordinal) || holdsPartitions));
                return new ListShape(p, element, topics, partitions && !topics);
            })];
        }

        public PropertyInfo? ErrorCode { get; }

        public PropertyInfo? ErrorMessage { get; }

        public PropertyInfo? Throttle { get; }

        public PropertyInfo? TopicId { get; }

        public PropertyInfo? Name { get; }

        public PropertyInfo? Key { get; }

        public PropertyInfo? PartitionId { get; }

        /// <summary>Node and leader ids, -1 (none) in a made-up answer.</summary>
        public PropertyInfo[] Unknown { get; }

        /// <summary>String ids (GroupId, MemberId) copied from a request entry to its answer.</summary>
        public PropertyInfo[] Keys { get; }

        public ListShape[] Lists { get; }

        public PropertyInfo[] TopicNameLists { get; }

        public PropertyInfo[] StringLists { get; }

        public PropertyInfo[] PartitionIndexLists { get; }

        public TopicRef TopicOf(object item) => new(Name?.GetValue(item) as string, TopicId?.GetValue(item) is Guid id ? id : Guid.Empty);

        public void SetTopic(object item, TopicRef topic)
        {
            if (topic.Name is not null)
            {
                Name?.SetValue(item, topic.Name);
            }

            TopicId?.SetValue(item, topic.Id);
        }

        public void SetError(object node, KafkaError error)
        {
            ErrorCode?.SetValue(node, error.Code);
            if (ErrorCode is not null && error.Code != 0)
            {
                ErrorMessage?.SetValue(node, error.Message);
            }
        }

        public void CopyKeys(object from, object to)
        {
            foreach (var key in Keys)
            {
                if (from.GetType().GetProperty(key.Name) is { } source && source.PropertyType == typeof(string))
                {
                    key.SetValue(to, source.GetValue(from) ?? key.GetValue(to));
                }
            }
        }
    }
}

/// <summary>A topic as a message names it: by name, by id (<see cref="Guid.Empty"/> when not), or both.</summary>
internal readonly record struct TopicRef(string? Name, Guid Id);
