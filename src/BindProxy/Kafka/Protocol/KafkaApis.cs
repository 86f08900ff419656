namespace BindProxy.Kafka.Protocol;

/// <summary>
/// What the proxy knows about one Kafka API: its name (for metrics and log lines), the first
/// version with the flexible encoding (compact strings and arrays, tagged fields; request header
/// v2, response header v1), and, for the APIs whose responses can carry broker addresses, from
/// which version they do and up to which version the proxy parses them.
/// </summary>
internal readonly record struct KafkaApi(short Key, string Name, short FirstFlexible, short FirstWithAddresses = KafkaApi.Never, short MaxParsed = KafkaApi.None)
{
    /// <summary>A version that never comes: SaslHandshake and OffsetDelete never became flexible.</summary>
    public const short Never = short.MaxValue;

    /// <summary>The proxy does not parse this API's responses (they pass through as they are).</summary>
    public const short None = -1;

    public bool IsFlexible(short version) => version >= FirstFlexible;

    /// <summary>True when a response of this version may name brokers, so it is parsed and rewritten.</summary>
    public bool CarriesBrokerAddresses(short version) => version >= FirstWithAddresses;
}

/// <summary>
/// The one table of Kafka API keys (0-87), from the request schemas in apache/kafka
/// (<c>clients/src/main/resources/common/message/*Request.json</c>: "apiKey", "flexibleVersions").
/// Metrics, log lines, header parsing, the response rewriter and the ApiVersions capper all read
/// it, so a newly parsed version is one edit here.
/// </summary>
internal static class KafkaApis
{
    /// <summary>The label value for keys outside the table, so a bad client cannot grow the metric series.</summary>
    public const string UnknownName = "other";

    private static readonly KafkaApi[] Table = Build();

    /// <summary>Every key the table knows, in key order.</summary>
    public static IReadOnlyList<KafkaApi> All => Table;

    /// <summary>
    /// The API of <paramref name="key"/>. Keys beyond the table are named <see cref="UnknownName"/>
    /// and assumed flexible from version 0: every API added since Kafka 2.4 (KIP-482) has been.
    /// </summary>
    public static KafkaApi Of(short key) =>
        key >= 0 && key < Table.Length ? Table[key] : new KafkaApi(key, UnknownName, key < 0 ? KafkaApi.Never : (short)0);

    public static string NameOf(short key) => Of(key).Name;

    private static KafkaApi[] Build()
    {
        // (name, first flexible version), index = api key.
        (string Name, short FirstFlexible)[] rows =
        [
            ("Produce", 9), ("Fetch", 12), ("ListOffsets", 6), ("Metadata", 9), ("LeaderAndIsr", 4), // 0-4
            ("StopReplica", 2), ("UpdateMetadata", 6), ("ControlledShutdown", 3), ("OffsetCommit", 8), ("OffsetFetch", 6), // 5-9
            ("FindCoordinator", 3), ("JoinGroup", 6), ("Heartbeat", 4), ("LeaveGroup", 4), ("SyncGroup", 4), // 10-14
            ("DescribeGroups", 5), ("ListGroups", 3), ("SaslHandshake", KafkaApi.Never), ("ApiVersions", 3), ("CreateTopics", 5), // 15-19
            ("DeleteTopics", 4), ("DeleteRecords", 2), ("InitProducerId", 2), ("OffsetForLeaderEpoch", 4), ("AddPartitionsToTxn", 3), // 20-24
            ("AddOffsetsToTxn", 3), ("EndTxn", 3), ("WriteTxnMarkers", 1), ("TxnOffsetCommit", 3), ("DescribeAcls", 2), // 25-29
            ("CreateAcls", 2), ("DeleteAcls", 2), ("DescribeConfigs", 4), ("AlterConfigs", 2), ("AlterReplicaLogDirs", 2), // 30-34
            ("DescribeLogDirs", 2), ("SaslAuthenticate", 2), ("CreatePartitions", 2), ("CreateDelegationToken", 2), ("RenewDelegationToken", 2), // 35-39
            ("ExpireDelegationToken", 2), ("DescribeDelegationToken", 2), ("DeleteGroups", 2), ("ElectLeaders", 2), ("IncrementalAlterConfigs", 1), // 40-44
            ("AlterPartitionReassignments", 0), ("ListPartitionReassignments", 0), ("OffsetDelete", KafkaApi.Never), ("DescribeClientQuotas", 1), ("AlterClientQuotas", 1), // 45-49
            ("DescribeUserScramCredentials", 0), ("AlterUserScramCredentials", 0), ("Vote", 0), ("BeginQuorumEpoch", 1), ("EndQuorumEpoch", 1), // 50-54
            ("DescribeQuorum", 0), ("AlterPartition", 0), ("UpdateFeatures", 0), ("Envelope", 0), ("FetchSnapshot", 0), // 55-59
            ("DescribeCluster", 0), ("DescribeProducers", 0), ("BrokerRegistration", 0), ("BrokerHeartbeat", 0), ("UnregisterBroker", 0), // 60-64
            ("DescribeTransactions", 0), ("ListTransactions", 0), ("AllocateProducerIds", 0), ("ConsumerGroupHeartbeat", 0), ("ConsumerGroupDescribe", 0), // 65-69
            ("ControllerRegistration", 0), ("GetTelemetrySubscriptions", 0), ("PushTelemetry", 0), ("AssignReplicasToDirs", 0), ("ListConfigResources", 0), // 70-74
            ("DescribeTopicPartitions", 0), ("ShareGroupHeartbeat", 0), ("ShareGroupDescribe", 0), ("ShareFetch", 0), ("ShareAcknowledge", 0), // 75-79
            ("AddRaftVoter", 0), ("RemoveRaftVoter", 0), ("UpdateRaftVoter", 0), ("InitializeShareGroupState", 0), ("ReadShareGroupState", 0), // 80-84
            ("WriteShareGroupState", 0), ("DeleteShareGroupState", 0), ("ReadShareGroupStateSummary", 0), // 85-87
        ];

        var table = new KafkaApi[rows.Length];
        for (short key = 0; key < rows.Length; key++)
        {
            table[key] = new KafkaApi(key, rows[key].Name, rows[key].FirstFlexible);
        }

        // The responses the proxy parses: from which version they can name brokers (ApiVersions is
        // parsed to cap versions, never for addresses), and the newest version the walkers know.
        (short Key, short FirstWithAddresses, short MaxParsed)[] parsed =
        [
            (KafkaApiKeys.Produce, 10, 11), // KIP-951 NodeEndpoints
            (KafkaApiKeys.Fetch, 16, 17), // KIP-951 NodeEndpoints
            (KafkaApiKeys.Metadata, 0, 13),
            (KafkaApiKeys.FindCoordinator, 0, 6),
            (KafkaApiKeys.ApiVersions, KafkaApi.Never, 4),
            (KafkaApiKeys.DescribeCluster, 0, 2),
            (KafkaApiKeys.ShareFetch, 0, 0),
            (KafkaApiKeys.ShareAcknowledge, 0, 0),
        ];
        foreach (var (key, firstWithAddresses, maxParsed) in parsed)
        {
            table[key] = table[key] with { FirstWithAddresses = firstWithAddresses, MaxParsed = maxParsed };
        }

        return table;
    }
}
