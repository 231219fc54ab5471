using System.Collections.Concurrent;
using System.Net;
using System.Runtime.CompilerServices;
using Prometheus;

namespace Har.Service.Security;

/// <summary>
/// The anonymous clients (<see cref="ClientAddress"/> groups) a per-client structure keeps state for, at most
/// <see cref="Capacity"/> (<see cref="ServiceOptions.MaxTrackedClients"/>). A client seen within <see cref="IdleAfter"/>
/// keeps its entry; a new client finding the table full takes the place of a client idle longer than that (they are
/// dropped first, in one pass at most once a second); when none is idle it is not tracked and shares one
/// <see cref="Overflow"/> partition with every other such client, so they are limited together instead of each getting a
/// fresh budget, and the service's memory stays bounded whatever the number of addresses. Counted in
/// <c>har_service_client_overflow_total{table}</c>; <c>har_service_tracked_clients{table}</c> is the table's size.
/// </summary>
internal sealed class TrackedClients
{
    /// <summary>The partition of the clients that found the table full.</summary>
    public static readonly object Overflow = new OverflowPartition();

    private static readonly Gauge Tracked = Metrics.CreateGauge(
        "har_service_tracked_clients",
        "Anonymous clients (IPv4 addresses, IPv6 prefixes) a per-client structure keeps state for, at most Har:Service:MaxTrackedClients.",
        new GaugeConfiguration { LabelNames = ["table"] });

    private static readonly Counter Overflowed = Metrics.CreateCounter(
        "har_service_client_overflow_total",
        "Requests of anonymous clients that found their per-client table full (Har:Service:MaxTrackedClients, no idle client to drop) and were limited together in one overflow partition.",
        new CounterConfiguration { LabelNames = ["table"] });

    private static readonly TimeSpan PruneSpacing = TimeSpan.FromSeconds(1);

    private readonly ConcurrentDictionary<IPAddress, StrongBox<long>> _clients = new();
    private readonly TimeProvider _time;
    private readonly long _idleTicks;
    private readonly Gauge.Child _tracked;
    private readonly Counter.Child _overflowed;
    private readonly Lock _gate = new();
    private int _count;
    private long _lastPrune;

    public TrackedClients(string table, int capacity, TimeSpan idleAfter, TimeProvider time)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(capacity, 1);
        Capacity = capacity;
        IdleAfter = idleAfter;
        _time = time;
        _idleTicks = (long)(idleAfter.TotalSeconds * time.TimestampFrequency);
        _lastPrune = time.GetTimestamp();
        (_tracked, _overflowed) = Series(table);
    }

    /// <summary>The table's series of <c>har_service_tracked_clients</c> and <c>har_service_client_overflow_total</c>, exported from 0.</summary>
    public static (Gauge.Child Tracked, Counter.Child Overflowed) Series(string table)
    {
        var tracked = Tracked.WithLabels(table);
        var overflowed = Overflowed.WithLabels(table);
        tracked.Set(0);
        overflowed.Inc(0);
        return (tracked, overflowed);
    }

    /// <summary>Gets the most clients tracked at once.</summary>
    public int Capacity { get; }

    /// <summary>Gets how long a client must have been unseen before its entry may be dropped.</summary>
    public TimeSpan IdleAfter { get; }

    /// <summary>Gets the clients tracked now.</summary>
    public int Count => Volatile.Read(ref _count);

    /// <summary>The partition of <paramref name="client"/>: itself when it is (or now becomes) tracked, else <see cref="Overflow"/>.</summary>
    public object PartitionOf(IPAddress client)
    {
        var now = _time.GetTimestamp();
        if (_clients.TryGetValue(client, out var seen))
        {
            Volatile.Write(ref seen.Value, now);
            return client;
        }

        lock (_gate)
        {
            if (_clients.TryGetValue(client, out seen))
            {
                Volatile.Write(ref seen.Value, now);
                return client;
            }

            // Idle entries are dropped when the table is full (at most once a second: a full table under a flood of new
            // addresses must not cost a pass over it per request), and anyway once per idle period so the gauge follows.
            if ((_count >= Capacity && now - _lastPrune >= (long)(PruneSpacing.TotalSeconds * _time.TimestampFrequency)) || now - _lastPrune >= _idleTicks)
            {
                Prune(now);
            }

            if (_count >= Capacity)
            {
                _overflowed.Inc();
                return Overflow;
            }

            _clients[client] = new StrongBox<long>(now);
            _tracked.Set(++_count);
            return client;
        }
    }

    private void Prune(long now)
    {
        _lastPrune = now;
        foreach (var (client, seen) in _clients)
        {
            if (now - Volatile.Read(ref seen.Value) > _idleTicks && _clients.TryRemove(client, out _))
            {
                _count--;
            }
        }

        _tracked.Set(_count);
    }

    private sealed class OverflowPartition
    {
        public override string ToString() => "(untracked clients)";
    }
}
