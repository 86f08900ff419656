using System.Reflection;
using System.Runtime.InteropServices;
using System.Text;

namespace BindProxy.Demo;

/// <summary>
/// librdkafka's in-process mock Kafka cluster, driven through its C API. Each broker listens on
/// 127.0.0.1 with an ephemeral port; node ids are 1..N.
/// </summary>
/// <remarks>
/// The native library is loaded explicitly, by full path, from the librdkafka.redist package: its
/// default linux-x64 librdkafka.so needs libsasl2.so.3 (absent on Debian 12), and a system-wide
/// librdkafka (e.g. 2.0 from kcat) would otherwise be picked up by name and lack the mock symbols.
/// Confluent.Kafka is pointed at the same file so both sides share one copy.
/// </remarks>
internal sealed class MockCluster : IDisposable
{
    private const string LibraryName = "bindproxy-librdkafka";
    private const int ProducerType = 0;
    private const int ErrorBufferSize = 512;

    private static readonly Lock LoadLock = new();
    private static string? s_libraryPath;
    private static IntPtr s_libraryHandle;
    private static string? s_loadError;

    private IntPtr _client;
    private IntPtr _cluster;

    private MockCluster(IntPtr client, IntPtr cluster, int brokerCount)
    {
        _client = client;
        _cluster = cluster;
        BrokerCount = brokerCount;
        BootstrapServers = PtrToString(rd_kafka_mock_cluster_bootstraps(cluster));
        BrokerAddresses = BootstrapServers.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
    }

    public int BrokerCount { get; }

    /// <summary>Comma-separated host:port of every broker, in node id order (1..N).</summary>
    public string BootstrapServers { get; }

    public IReadOnlyList<string> BrokerAddresses { get; }

    /// <summary>Full path of the native library in use, once loaded.</summary>
    public static string? LibraryPath => s_libraryPath;

    /// <summary>
    /// Loads the bundled librdkafka for both the P/Invokes here and Confluent.Kafka. Returns null on
    /// success, or why it could not be loaded (tests skip on that, the demo reports it).
    /// </summary>
    public static string? EnsureNativeLibrary()
    {
        lock (LoadLock)
        {
            if (s_libraryHandle != IntPtr.Zero || s_loadError is not null)
            {
                return s_loadError;
            }

            var path = FindLibrary();
            if (path is null)
            {
                s_loadError = "bundled librdkafka (librdkafka.redist 2.16.0) not found for " + RuntimeInformation.RuntimeIdentifier;
                return s_loadError;
            }

            if (!NativeLibrary.TryLoad(path, out s_libraryHandle))
            {
                s_loadError = "could not load " + path;
                return s_loadError;
            }

            s_libraryPath = path;
            NativeLibrary.SetDllImportResolver(typeof(MockCluster).Assembly, Resolve);
            // Confluent.Kafka's Library.Load calls dlopen through "libdl", which only exists as
            // libdl.so.2 (no dev symlink) on a plain Debian; glibc's real name is resolved here.
            NativeLibrary.SetDllImportResolver(typeof(Confluent.Kafka.Library).Assembly, ResolveForConfluent);
            try
            {
                Confluent.Kafka.Library.Load(path);
            }
            catch (InvalidOperationException)
            {
                // Already loaded by an earlier caller in this process, which can only have been this path.
            }

            return null;
        }
    }

    public static MockCluster Create(int brokers)
    {
        var error = EnsureNativeLibrary();
        if (error is not null)
        {
            throw new InvalidOperationException(error);
        }

        var conf = rd_kafka_conf_new();
        var errstr = new byte[ErrorBufferSize];
        // Keep the owning client quiet; the mock cluster's own threads do the work.
        if (rd_kafka_conf_set(conf, Utf8("log_level"), Utf8("3"), errstr, errstr.Length) != 0)
        {
            throw new InvalidOperationException(Encoding.UTF8.GetString(errstr).TrimEnd('\0'));
        }

        // rd_kafka_new takes ownership of conf on success.
        var client = rd_kafka_new(ProducerType, conf, errstr, errstr.Length);
        if (client == IntPtr.Zero)
        {
            throw new InvalidOperationException("rd_kafka_new: " + Encoding.UTF8.GetString(errstr).TrimEnd('\0'));
        }

        var cluster = rd_kafka_mock_cluster_new(client, brokers);
        if (cluster == IntPtr.Zero)
        {
            rd_kafka_destroy(client);
            throw new InvalidOperationException("rd_kafka_mock_cluster_new failed");
        }

        return new MockCluster(client, cluster, brokers);
    }

    public void CreateTopic(string topic, int partitions, int replicationFactor) =>
        Check(rd_kafka_mock_topic_create(_cluster, Utf8(topic), partitions, replicationFactor), "topic_create");

    /// <summary>Creates <paramref name="topic"/> with partition p led by broker p + 1, so a client needs a connection to each broker.</summary>
    public void CreateTopicLedByEachBroker(string topic, int partitions, int replicationFactor)
    {
        CreateTopic(topic, partitions, replicationFactor);
        for (int p = 0; p < partitions; p++)
        {
            SetLeader(topic, p, p + 1);
        }
    }

    public void SetLeader(string topic, int partition, int brokerId) =>
        Check(rd_kafka_mock_partition_set_leader(_cluster, Utf8(topic), partition, brokerId), "partition_set_leader");

    public void BrokerDown(int brokerId) => Check(rd_kafka_mock_broker_set_down(_cluster, brokerId), "broker_set_down");

    public void BrokerUp(int brokerId) => Check(rd_kafka_mock_broker_set_up(_cluster, brokerId), "broker_set_up");

    /// <summary>Adds broker <paramref name="brokerId"/> to the running cluster; it listens on a new ephemeral port of 127.0.0.1.</summary>
    public void AddBroker(int brokerId) => Check(rd_kafka_mock_broker_add(_cluster, brokerId), "broker_add");

    /// <summary>Changes the address the broker advertises in Metadata (it keeps listening where it was).</summary>
    public void SetHostPort(int brokerId, string host, int port) =>
        Check(rd_kafka_mock_broker_set_host_port(_cluster, brokerId, Utf8(host), port), "broker_set_host_port");

    /// <summary>
    /// How long a new consumer group waits for more members before its first assignment
    /// (the mock's default is 3 s, like a real broker's group.initial.rebalance.delay.ms).
    /// </summary>
    public void SetGroupInitialRebalanceDelay(int delayMs) => rd_kafka_mock_group_initial_rebalance_delay_ms(_cluster, delayMs);

    public void SetRtt(int brokerId, int rttMs) => Check(rd_kafka_mock_broker_set_rtt(_cluster, brokerId, rttMs), "broker_set_rtt");

    /// <summary>keyType is "group" or "transaction".</summary>
    public void SetCoordinator(string keyType, string key, int brokerId) =>
        Check(rd_kafka_mock_coordinator_set(_cluster, Utf8(keyType), Utf8(key), brokerId), "coordinator_set");

    public void Dispose()
    {
        if (_cluster != IntPtr.Zero)
        {
            rd_kafka_mock_cluster_destroy(_cluster);
            _cluster = IntPtr.Zero;
        }

        if (_client != IntPtr.Zero)
        {
            rd_kafka_destroy(_client);
            _client = IntPtr.Zero;
        }
    }

    private static string? FindLibrary()
    {
        if (!OperatingSystem.IsLinux() || RuntimeInformation.ProcessArchitecture != Architecture.X64)
        {
            return null;
        }

        // centos8-librdkafka.so is self-contained (no libsasl2.so.3 dependency).
        string[] names = ["centos8-librdkafka.so", "librdkafka.so"];
        var nugetRoot = Environment.GetEnvironmentVariable("NUGET_PACKAGES")
            ?? Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".nuget", "packages");
        string[] directories =
        [
            Path.Combine(AppContext.BaseDirectory, "runtimes", "linux-x64", "native"),
            Path.Combine(nugetRoot, "librdkafka.redist", "2.16.0", "runtimes", "linux-x64", "native"),
        ];

        foreach (var name in names)
        {
            foreach (var directory in directories)
            {
                var candidate = Path.Combine(directory, name);
                if (File.Exists(candidate))
                {
                    return candidate;
                }
            }
        }

        return null;
    }

    private static IntPtr Resolve(string libraryName, Assembly assembly, DllImportSearchPath? searchPath) =>
        libraryName == LibraryName ? s_libraryHandle : IntPtr.Zero;

    private static IntPtr ResolveForConfluent(string libraryName, Assembly assembly, DllImportSearchPath? searchPath)
    {
        if (libraryName.Contains("librdkafka", StringComparison.Ordinal))
        {
            return s_libraryHandle;
        }

        if (libraryName is "libdl" or "libdl.so")
        {
            foreach (var candidate in (string[])["libdl.so.2", "libc.so.6"])
            {
                if (NativeLibrary.TryLoad(candidate, out var handle))
                {
                    return handle;
                }
            }
        }

        return IntPtr.Zero;
    }

    private static void Check(int error, string what)
    {
        if (error != 0)
        {
            throw new InvalidOperationException($"rd_kafka_mock_{what} failed with error {error}");
        }
    }

    private static byte[] Utf8(string value) => Encoding.UTF8.GetBytes(value + "\0");

    private static string PtrToString(IntPtr value) => Marshal.PtrToStringUTF8(value) ?? string.Empty;

#pragma warning disable SYSLIB1054 // Plain DllImport with byte[] strings: no unsafe code needed.
    [DllImport(LibraryName)]
    private static extern IntPtr rd_kafka_conf_new();

    [DllImport(LibraryName)]
    private static extern int rd_kafka_conf_set(IntPtr conf, byte[] name, byte[] value, byte[] errstr, nint errstrSize);

    [DllImport(LibraryName)]
    private static extern IntPtr rd_kafka_new(int type, IntPtr conf, byte[] errstr, nint errstrSize);

    [DllImport(LibraryName)]
    private static extern void rd_kafka_destroy(IntPtr rk);

    [DllImport(LibraryName)]
    private static extern IntPtr rd_kafka_mock_cluster_new(IntPtr rk, int brokerCount);

    [DllImport(LibraryName)]
    private static extern void rd_kafka_mock_cluster_destroy(IntPtr cluster);

    [DllImport(LibraryName)]
    private static extern IntPtr rd_kafka_mock_cluster_bootstraps(IntPtr cluster);

    [DllImport(LibraryName)]
    private static extern int rd_kafka_mock_topic_create(IntPtr cluster, byte[] topic, int partitions, int replicationFactor);

    [DllImport(LibraryName)]
    private static extern int rd_kafka_mock_partition_set_leader(IntPtr cluster, byte[] topic, int partition, int brokerId);

    [DllImport(LibraryName)]
    private static extern int rd_kafka_mock_broker_set_down(IntPtr cluster, int brokerId);

    [DllImport(LibraryName)]
    private static extern int rd_kafka_mock_broker_set_up(IntPtr cluster, int brokerId);

    [DllImport(LibraryName)]
    private static extern int rd_kafka_mock_broker_set_host_port(IntPtr cluster, int brokerId, byte[] host, int port);

    [DllImport(LibraryName)]
    private static extern int rd_kafka_mock_broker_add(IntPtr cluster, int brokerId);

    [DllImport(LibraryName)]
    private static extern int rd_kafka_mock_broker_set_rtt(IntPtr cluster, int brokerId, int rttMs);

    [DllImport(LibraryName)]
    private static extern void rd_kafka_mock_group_initial_rebalance_delay_ms(IntPtr cluster, int delayMs);

    [DllImport(LibraryName)]
    private static extern int rd_kafka_mock_coordinator_set(IntPtr cluster, byte[] keyType, byte[] key, int brokerId);
#pragma warning restore SYSLIB1054
}
