namespace BindProxy.Kafka.Protocol;

/// <summary>A tagged field the model does not know at the version read, kept so it is written back byte for byte.</summary>
internal sealed record RawTaggedField(uint Tag, byte[] Data);
