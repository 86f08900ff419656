namespace BindProxy.Configuration;

/// <summary>The routes a field may be set on.</summary>
internal enum FieldScope
{
    AnyProtocol,
    KafkaOnly,
    HttpOnly,
}
