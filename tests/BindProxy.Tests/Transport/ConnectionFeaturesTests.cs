using BindProxy.Transport;

namespace BindProxy.Tests.Transport;

public sealed class ConnectionFeaturesTests
{
    private interface IFirst;

    [Fact]
    public void Holds_replaces_removes_and_grows_past_its_first_array()
    {
        var first = new object();
        var features = new ConnectionFeatures(typeof(IFirst), first);
        Assert.Same(first, features[typeof(IFirst)]);

        var types = new[] { typeof(int), typeof(long), typeof(short), typeof(byte), typeof(char), typeof(double), typeof(float), typeof(decimal) };
        foreach (var type in types)
        {
            features[type] = type.Name;
        }

        Assert.Equal(9, features.Count());
        Assert.All(types, t => Assert.Equal(t.Name, features[t]));

        int revision = features.Revision;
        features.Set<string>("replaced");
        features.Set<string>("again");
        Assert.Equal("again", features.Get<string>());
        Assert.Equal(revision + 2, features.Revision);

        features[typeof(long)] = null;
        Assert.Null(features[typeof(long)]);
        Assert.Equal("Int16", features[typeof(short)]);
        Assert.Equal(9, features.Count());
        Assert.Null(features[typeof(Guid)]);
    }
}
