using System.Collections;
using Microsoft.AspNetCore.Http.Features;

namespace BindProxy.Transport;

/// <summary>
/// The feature collection of an accepted proxy connection: a handful of entries (the socket
/// feature and what Kestrel sets per connection) in one small array, instead of a dictionary per
/// connection.
/// </summary>
internal sealed class ConnectionFeatures(Type firstType, object first) : IFeatureCollection
{
    private (Type Type, object Feature)[] _entries = [(firstType, first), default, default, default, default, default];
    private int _count = 1;

    public bool IsReadOnly => false;

    public int Revision { get; private set; }

    public object? this[Type key]
    {
        get
        {
            for (int i = 0; i < _count; i++)
            {
                if (_entries[i].Type == key)
                {
                    return _entries[i].Feature;
                }
            }

            return null;
        }

        set
        {
            int index = IndexOf(key);
            if (value is null)
            {
                if (index >= 0)
                {
                    _entries[index] = _entries[--_count];
                    _entries[_count] = default;
                    Revision++;
                }

                return;
            }

            if (index < 0)
            {
                if (_count == _entries.Length)
                {
                    Array.Resize(ref _entries, _entries.Length * 2);
                }

                index = _count++;
            }

            _entries[index] = (key, value);
            Revision++;
        }
    }

    public TFeature? Get<TFeature>() => this[typeof(TFeature)] is TFeature feature ? feature : default;

    public void Set<TFeature>(TFeature? instance) => this[typeof(TFeature)] = instance;

    public IEnumerator<KeyValuePair<Type, object>> GetEnumerator()
    {
        for (int i = 0; i < _count; i++)
        {
            yield return new KeyValuePair<Type, object>(_entries[i].Type, _entries[i].Feature);
        }
    }

    IEnumerator IEnumerable.GetEnumerator() => GetEnumerator();

    private int IndexOf(Type key)
    {
        for (int i = 0; i < _count; i++)
        {
            if (_entries[i].Type == key)
            {
                return i;
            }
        }

        return -1;
    }
}
