namespace Har.Deployment;

/// <summary>
/// What a fleet replica keeps for the others between two exchanges (labels it received, windows it labelled): off
/// until <see cref="Keep"/>, bounded (the oldest dropped past the capacity), thread-safe.
/// </summary>
/// <typeparam name="T">The item kept.</typeparam>
internal sealed class LabelOutbox<T>(int capacity)
{
    private readonly Lock _lock = new();
    private List<T>? _items;

    /// <summary>Gets whether items are being kept (so a caller can skip building one that would be dropped).</summary>
    public bool IsKeeping => Volatile.Read(ref _items) is not null;

    /// <summary>Starts (or stops, dropping what waits) keeping items.</summary>
    public void Keep(bool keep)
    {
        lock (_lock)
        {
            _items = keep ? _items ?? [] : null;
        }
    }

    /// <summary>Keeps <paramref name="item"/> while keeping is on; past the capacity the oldest is dropped.</summary>
    public void Add(T item)
    {
        lock (_lock)
        {
            if (_items is not { } items)
            {
                return;
            }

            if (items.Count >= capacity)
            {
                items.RemoveAt(0);
            }

            items.Add(item);
        }
    }

    /// <summary>Takes everything kept since the last drain.</summary>
    public List<T> Drain()
    {
        lock (_lock)
        {
            if (_items is not { Count: > 0 } items)
            {
                return [];
            }

            _items = [];
            return items;
        }
    }

    /// <summary>Puts items a <see cref="Drain"/> took back in front of those kept since (their delivery failed), within the capacity.</summary>
    public void Requeue(List<T> items)
    {
        lock (_lock)
        {
            _items?.InsertRange(0, items.Take(Math.Max(0, capacity - _items.Count)));
        }
    }
}
