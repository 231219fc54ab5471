using System.Collections.Concurrent;
using Har.Deployment;
using Har.Drift;
using Har.Service.Infrastructure;
using Microsoft.Extensions.Options;
using Prometheus;

namespace Har.Service.Security;

/// <summary>
/// Shares the service's two tables that every device needs a place in — the stream table (<see cref="ServiceOptions.MaxStreams"/>)
/// and the drift monitors (<see cref="ServiceOptions.DriftMaxDevices"/>) — between clients once they are full. Both were
/// first come, first served. Found from outside: one anonymous address held all 1,000 drift monitors, so keyed devices
/// went unmonitored, and ten addresses within their stream quotas filled the 10,000-stream table, so every other device
/// got 503.
/// <para>
/// A table first frees places its own way (idle streams; monitors of devices silent for their minimum idle time). When it
/// still has none for a new stream or device:
/// </para>
/// <list type="bullet">
/// <item>an API key's takes the place of the least recently used stream of the anonymous client that holds the most places
/// (keys first: the operator issued them);</item>
/// <item>an anonymous client's does the same when that client would still hold at least as many as the newcomer's (a
/// max-min fair share: a client alone keeps the whole table, and none is cut below an equal share).</item>
/// </list>
/// <para>
/// A key's places are never taken (keys share by <see cref="ServiceOptions.MaxStreamsPerKey"/>). The stream whose place
/// is taken loses its buffered frames (its next append starts a new window) or its drift history and alarm, as an idle
/// one would. Anonymous clients are the stream quota's (<see cref="StreamQuota"/>): with
/// <see cref="ServiceOptions.MaxStreamsPerAnonymousClient"/> at 0 they are not tracked, and tables stay first come,
/// first served.
/// </para>
/// </summary>
internal sealed class CapacityShares(StreamQuota quota, IOptions<ServiceOptions> options, TimeProvider time, ILogger<CapacityShares> logger)
{
    private static readonly Counter Taken = Metrics.CreateCounter(
        "har_service_capacity_places_taken_total",
        "Places in a full table (streams: Har:Service:MaxStreams; drift_monitors: Har:Service:DriftMaxDevices) taken from an anonymous client for a new stream of an API key (newcomer=key) or of an anonymous client holding fewer places (newcomer=anonymous).",
        new CounterConfiguration { LabelNames = ["table", "newcomer"] });

    /// <summary>Devices that found every drift monitor held at their latest window, and when (they get a place before their next one).</summary>
    private readonly ConcurrentDictionary<string, long> _waiting = new(StringComparer.Ordinal);

    private readonly Lock _gate = new();
    private Dictionary<string, Dictionary<string, long>>? _monitored;
    private long _monitoredAt;

    /// <summary>The most devices remembered as waiting for a drift monitor.</summary>
    internal const int MaxWaiting = 4096;

    /// <summary>
    /// Appends to a stream, taking a place in the full stream table when the windower refuses a new stream and the
    /// sharing rules give this client one. Throws the windower's <see cref="Har.Inference.StreamLimitExceededException"/>
    /// (503) when they do not.
    /// </summary>
    public async ValueTask<StreamPrediction[]> AppendAsync(HttpContext context, ServingPipeline pipeline, string streamId, ReadOnlyMemory<float> samples, CancellationToken ct)
    {
        try
        {
            return await pipeline.AppendAsync(streamId, samples, ct);
        }
        catch (Har.Inference.StreamLimitExceededException)
        {
            var newcomer = quota.AnonymousClientOf(context, streamId);
            if (!TakeStreamPlace(pipeline, newcomer))
            {
                // It holds no place: it must not count in its client's share (nor be chosen to give one up).
                if (newcomer is not null)
                {
                    quota.ForgetStream(newcomer, streamId);
                }

                throw;
            }
        }

        return await pipeline.AppendAsync(streamId, samples, ct);
    }

    /// <summary>
    /// Before a stream's windows are served: when the device found every drift monitor held at its previous window and
    /// still has none, takes a monitor for it by the sharing rules, so its windows now are monitored.
    /// </summary>
    public void BeforeServing(HttpContext context, string streamId, DeviceDriftMonitor? monitor)
    {
        if (monitor is null || monitor.DeviceCount < options.Value.DriftMaxDevices || monitor.IsMonitored(streamId))
        {
            return;
        }

        if (!_waiting.TryRemove(streamId, out _))
        {
            // First let the monitor free a place its own way (a device silent for its minimum idle time).
            if (_waiting.Count < MaxWaiting)
            {
                _waiting[streamId] = time.GetTimestamp();
            }

            return;
        }

        var newcomer = quota.AnonymousClientOf(context, streamId);
        (string Client, string StreamId)? victim = null;
        lock (_gate)
        {
            var monitored = Monitored(monitor);
            var own = newcomer is not null && monitored.TryGetValue(newcomer, out var held) ? held.Count : 0;
            for (var attempt = 0; attempt < 3 && victim is null; attempt++)
            {
                if (ChooseVictim(monitored, newcomer, own + 1) is not { } v)
                {
                    break;
                }

                Remove(monitored, v);
                if (monitor.Remove(v.StreamId))
                {
                    victim = v;
                }
            }

            if (victim is not null && newcomer is not null)
            {
                if (!monitored.TryGetValue(newcomer, out var mine))
                {
                    monitored[newcomer] = mine = new Dictionary<string, long>(StringComparer.Ordinal);
                }

                mine[streamId] = time.GetTimestamp();
            }
        }

        if (victim is { } taken)
        {
            Taken.WithLabels("drift_monitors", newcomer is null ? "key" : "anonymous").Inc();
            Log.DriftMonitorTaken(logger, taken.StreamId, taken.Client, streamId, newcomer ?? "an API key");
        }
    }

    /// <summary>Forgets waiting devices not seen for a minute (the stream maintenance timer calls it).</summary>
    public void Sweep()
    {
        var before = time.GetTimestamp() - (60 * time.TimestampFrequency);
        foreach (var (device, since) in _waiting)
        {
            if (since < before)
            {
                _waiting.TryRemove(device, out _);
            }
        }
    }

    /// <summary>
    /// The place that gives way to a new one of <paramref name="newcomer"/> (an anonymous client; <see langword="null"/>: an
    /// API key) among the anonymous <paramref name="holders"/> (client → its places and when each was last used): the least
    /// recently used place of the client holding the most places other than the newcomer, for a key always, for an
    /// anonymous client when that client holds more than <paramref name="newcomerHeldAfter"/> (what the newcomer holds once
    /// it has the place). <see langword="null"/>: none gives way.
    /// </summary>
    internal static (string Client, string StreamId)? ChooseVictim(IEnumerable<KeyValuePair<string, Dictionary<string, long>>> holders, string? newcomer, int newcomerHeldAfter)
    {
        Dictionary<string, long>? top = null;
        string? client = null;
        foreach (var (holder, places) in holders)
        {
            if (places.Count > (top?.Count ?? 0) && !string.Equals(holder, newcomer, StringComparison.Ordinal))
            {
                (client, top) = (holder, places);
            }
        }

        return top is null || (newcomer is not null && top.Count <= newcomerHeldAfter) ? null : (client!, LeastRecentlyUsed(top));
    }

    /// <summary>The place of <paramref name="places"/> used least recently.</summary>
    internal static string LeastRecentlyUsed(Dictionary<string, long> places)
    {
        string? oldest = null;
        var seen = long.MaxValue;
        foreach (var (id, used) in places)
        {
            if (used < seen)
            {
                (oldest, seen) = (id, used);
            }
        }

        return oldest!;
    }

    private bool TakeStreamPlace(ServingPipeline pipeline, string? newcomer)
    {
        for (var attempt = 0; attempt < 3; attempt++)
        {
            if (quota.TakeStreamPlace(newcomer) is not { } victim)
            {
                return false;
            }

            if (pipeline.RemoveStream(victim.StreamId))
            {
                Taken.WithLabels("streams", newcomer is null ? "key" : "anonymous").Inc();
                Log.StreamPlaceTaken(logger, victim.StreamId, victim.Client, newcomer ?? "an API key");
                return true;
            }
        }

        return false;
    }

    /// <summary>The anonymous clients' monitored devices, recomputed at most once a second (asking the monitor about every anonymous stream).</summary>
    private Dictionary<string, Dictionary<string, long>> Monitored(DeviceDriftMonitor monitor)
    {
        var now = time.GetTimestamp();
        if (_monitored is null || now - _monitoredAt >= time.TimestampFrequency)
        {
            var all = quota.AnonymousStreams();
            foreach (var (_, streams) in all)
            {
                foreach (var id in streams.Keys.ToList())
                {
                    if (!monitor.IsMonitored(id))
                    {
                        streams.Remove(id);
                    }
                }
            }

            (_monitored, _monitoredAt) = (all, now);
        }

        return _monitored;
    }

    private static void Remove(Dictionary<string, Dictionary<string, long>> holders, (string Client, string StreamId) place)
    {
        if (holders.TryGetValue(place.Client, out var places))
        {
            places.Remove(place.StreamId);
        }
    }
}
