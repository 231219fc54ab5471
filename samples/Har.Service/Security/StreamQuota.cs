using System.Globalization;
using System.Security.Claims;
using Har.Service.Endpoints;
using Microsoft.Extensions.Options;
using Prometheus;

namespace Har.Service.Security;

/// <summary>
/// Streams per client: how many streams one client (an API key, or an IPv4 address or IPv6 prefix when anonymous) may hold in the
/// stream table at once. A client holds a stream while it sent it samples within <see cref="ServiceOptions.StreamIdleTimeout"/>
/// (the stream's buffer lives that long). Without it one client could fill the table (<see cref="ServiceOptions.MaxStreams"/>;
/// the hostile-client probe filled it with one predictor key, and the window budget lets one anonymous address keep about
/// 2,000 streams from going idle) and every new device got 503 until those streams went idle. A new stream beyond the quota is 429 with Retry-After; the client's streams keep being
/// served. Anonymous clients get <see cref="ServiceOptions.MaxStreamsPerAnonymousClient"/>; keys
/// <see cref="ServiceOptions.MaxStreamsPerKey"/> (none by default, since one backend key often carries many devices).
/// Anonymous clients are <see cref="ClientAddress"/> groups (an IPv4 address, an IPv6 /64); at most
/// <see cref="ServiceOptions.MaxTrackedClients"/> of them hold streams, holding at most as many streams in all, and new
/// clients or streams beyond that share one quota (<see cref="OverflowClient"/>): the quota's memory is bounded, not
/// clients × their quota.
/// A stream id on <c>/v1/predict</c> counts too (<see cref="Use.Prediction"/>): the service keeps state per id there as
/// well (the predictions held for feedback labels, the device's drift monitor), and new ids evicted other devices' held predictions.
/// </summary>
internal sealed class StreamQuota
{
    private static readonly Counter Refused = Metrics.CreateCounter(
        "har_service_stream_quota_refusals_total",
        "New streams refused because their client held its quota of streams (Har:Service:MaxStreamsPerAnonymousClient, MaxStreamsPerKey).",
        new CounterConfiguration { LabelNames = ["client"] });

    private readonly ServiceOptions _options;
    private readonly TimeProvider _time;
    private readonly Lock _gate = new();
    private readonly Dictionary<string, Dictionary<string, long>> _clients = new(StringComparer.Ordinal);
    private readonly Dictionary<string, (string Key, long Seen)> _keyedOwners = new(StringComparer.Ordinal);
    private readonly Gauge.Child _tracked;
    private readonly Counter.Child _overflowed;
    private int _anonymous;
    private int _anonymousStreams;
    private long _lastPrune;

    public StreamQuota(IOptions<ServiceOptions> options, TimeProvider time)
    {
        _options = options.Value;
        _time = time;
        (_tracked, _overflowed) = TrackedClients.Series("stream_quota");
    }

    /// <summary>The client that anonymous clients finding <see cref="ServiceOptions.MaxTrackedClients"/> clients holding streams share (one quota for all of them).</summary>
    public const string OverflowClient = "address:(untracked clients)";


    /// <summary>
    /// Admits an append to <paramref name="streamId"/> by the context's client: a stream it holds, or a new one within its
    /// quota. Beyond the quota, writes 429 (Retry-After, problem details) and returns <see langword="true"/>.
    /// </summary>
    public async ValueTask<bool> RefuseIfOverAsync(HttpContext context, string streamId, Use use = Use.Append)
    {
        var keyName = context.User.FindFirstValue(ClaimTypes.Name);
        var keyed = keyName is not null;
        if (HeldByOtherKey(streamId, keyName))
        {
            // A stream an API key is sending belongs to that key while it is active: found from outside, an anonymous
            // caller appended to a keyed device's stream id, got back a window made of that device's frames, shifted its
            // frame indexes and raised a drift alarm on it.
            await Results.Problem(
                statusCode: StatusCodes.Status409Conflict,
                title: "Stream held by another client",
                detail: string.Create(CultureInfo.InvariantCulture, $"Stream '{ClientText.Shown(streamId, 64)}' is held by {(keyed ? "another API key" : "an API key")}: it sent the stream samples or windows within the last {_options.StreamIdleTimeout.TotalSeconds:0} s (Har:Service:StreamIdleTimeout), and a stream a key sends belongs to that key until then, so no other client adds frames to its windows, reads its predictions or feeds its drift monitor. {(use == Use.Append ? "Nothing was appended" : "Nothing was predicted")}; use a stream id of your own."))
                .ExecuteAsync(context);
            return true;
        }

        var limit = keyed ? _options.MaxStreamsPerKey : _options.MaxStreamsPerAnonymousClient;
        var (admitted, held, retry, shared) = limit == 0
            ? (true, 0, TimeSpan.Zero, false)
            : Admit(RefusalTracker.ClientOf(context, _options.AnonymousIPv6PrefixLength), streamId, limit, anonymous: !keyed);
        if (admitted)
        {
            // Claimed only once admitted: a stream refused by the key's quota is not the key's.
            ClaimForKey(streamId, keyName);
            return false;
        }

        Refused.WithLabels(keyed ? "key" : "anonymous").Inc();
        context.Response.Headers.RetryAfter = Math.Max(1, (int)Math.Ceiling(retry.TotalSeconds)).ToString(CultureInfo.InvariantCulture);
        var option = keyed ? "Har:Service:MaxStreamsPerKey" : "Har:Service:MaxStreamsPerAnonymousClient";
        await Results.Problem(
            statusCode: StatusCodes.Status429TooManyRequests,
            title: "Too many streams",
            detail: string.Create(CultureInfo.InvariantCulture, $"{(shared ? $"The service tracks the most anonymous clients or streams it may (Har:Service:MaxTrackedClients), and new ones share one quota: they hold {held} streams" : $"This client holds {held} streams")}, the most one {(keyed ? "API key" : "anonymous client (IPv4 address or IPv6 prefix)")} may hold ({option}); a stream is held until it received no samples for {_options.StreamIdleTimeout.TotalSeconds:0} s (Har:Service:StreamIdleTimeout). {(use == Use.Append ? $"Stream '{streamId}' was not created" : $"Nothing was predicted for stream '{streamId}' (a stream id on /v1/predict counts as a stream)")}; the client's other streams are served. Retry after the seconds in Retry-After, when its oldest stream is released."))
            .ExecuteAsync(context);
        return true;
    }

    /// <summary>
    /// Whether another client than <paramref name="keyName"/> (an API key, or an anonymous one when <see langword="null"/>)
    /// holds <paramref name="streamId"/>: a stream an API key used within the idle timeout is that key's; a key that uses a
    /// stream no active key holds takes it (<see cref="ClaimForKey"/>). Anonymous clients cannot be told apart from one another (a phone changes
    /// address), so anonymous streams are shared among them, as before; only a key's streams are protected.
    /// </summary>
    internal bool HeldByOtherKey(string streamId, string? keyName)
    {
        var now = _time.GetTimestamp();
        lock (_gate)
        {
            return _keyedOwners.TryGetValue(streamId, out var owner) && now - owner.Seen < IdleTicks && !string.Equals(owner.Key, keyName, StringComparison.Ordinal);
        }
    }

    /// <summary>
    /// Records that <paramref name="keyName"/> (an API key; <see langword="null"/>: anonymous) used the stream, after
    /// <see cref="HeldByOtherKey"/> let it: a key takes or keeps the stream; an anonymous use forgets an idle key's claim.
    /// </summary>
    internal void ClaimForKey(string streamId, string? keyName)
    {
        var now = _time.GetTimestamp();
        lock (_gate)
        {
            if (keyName is not null)
            {
                _keyedOwners[streamId] = (keyName, now);
            }
            else if (_keyedOwners.TryGetValue(streamId, out var owner) && now - owner.Seen >= IdleTicks)
            {
                _keyedOwners.Remove(streamId); // went idle: anyone may use the id again
            }
        }
    }

    /// <summary>How a client uses a stream id.</summary>
    public enum Use
    {
        /// <summary>Samples appended to the stream (<c>POST /v1/streams/{id}/samples</c>).</summary>
        Append,

        /// <summary>Whole windows predicted with the stream's id (<c>POST /v1/predict</c> with <c>stream_id</c>): the service keeps the predictions for feedback labels and the device's drift monitor.</summary>
        Prediction,
    }

    /// <summary>Forgets the streams no client sent samples to within the idle timeout, and clients left with none (the stream maintenance timer calls it, off the request path).</summary>
    public void Sweep()
    {
        var before = _time.GetTimestamp() - IdleTicks;
        lock (_gate)
        {
            ExpireAll(before);
            foreach (var (id, owner) in _keyedOwners.ToList())
            {
                if (owner.Seen < before)
                {
                    _keyedOwners.Remove(id);
                }
            }
        }
    }

    internal (bool Admitted, int Held, TimeSpan RetryAfter, bool Shared) Admit(string client, string streamId, int limit, bool anonymous)
    {
        var now = _time.GetTimestamp();
        var idle = IdleTicks;
        lock (_gate)
        {
            _clients.TryGetValue(client, out var streams);
            if (streams is not null && streams.ContainsKey(streamId))
            {
                streams[streamId] = now;
                return (true, streams.Count, TimeSpan.Zero, false);
            }

            // A new stream of an anonymous client: at most MaxTrackedClients anonymous clients hold streams, and at most as
            // many streams in all. Beyond either, the streams that went idle (and clients left with none) are dropped
            // first, in one pass at most once a second; when that frees nothing, the stream counts against the quota
            // that every such client shares (a stream it created there before is found there).
            if (anonymous && Full(streams) && now - _lastPrune >= _time.TimestampFrequency)
            {
                _lastPrune = now;
                ExpireAll(now - idle);
                _clients.TryGetValue(client, out streams);
            }

            var shared = false;
            if (anonymous && Full(streams))
            {
                _overflowed.Inc();
                client = OverflowClient;
                shared = true;
                _clients.TryGetValue(client, out streams);
                if (streams is not null && streams.ContainsKey(streamId))
                {
                    streams[streamId] = now;
                    return (true, streams.Count, TimeSpan.Zero, true);
                }
            }

            if (streams is null)
            {
                _clients[client] = streams = new Dictionary<string, long>(StringComparer.Ordinal);
                if (IsTracked(client))
                {
                    _tracked.Set(++_anonymous);
                }
            }

            if (streams.Count >= limit)
            {
                var expired = Expire(streams, now - idle);
                if (IsTracked(client))
                {
                    _anonymousStreams -= expired;
                }
            }

            if (streams.Count >= limit)
            {
                var oldest = streams.Values.Min();
                return (false, streams.Count, _time.GetElapsedTime(now, oldest + idle) is var wait && wait > TimeSpan.Zero ? wait : TimeSpan.FromSeconds(1), shared);
            }

            streams[streamId] = now;
            if (IsTracked(client))
            {
                _anonymousStreams++;
            }

            return (true, streams.Count, TimeSpan.Zero, shared);
        }
    }

    /// <summary>
    /// At a full stream table, the anonymous stream that gives its place to a new stream of <paramref name="newcomer"/> (an
    /// anonymous client; <see langword="null"/>: an API key), by <see cref="CapacityShares.ChooseVictim"/>; the quota
    /// forgets it, so its client's next append to it is a new stream. <see langword="null"/> when no stream should give way.
    /// </summary>
    internal (string Client, string StreamId)? TakeStreamPlace(string? newcomer)
    {
        lock (_gate)
        {
            // The client holding the most is found by a scan of every client, at most once a second (up to
            // MaxTrackedClients of them): new streams of many addresses at a full table must not each pay for a scan
            // under this lock. Between scans the client found holds at least as many as its count says now.
            var now = _time.GetTimestamp();
            if (_largest is null || !_clients.ContainsKey(_largest) || now - _largestFoundAt >= _time.TimestampFrequency)
            {
                _largest = null;
                var most = 0;
                foreach (var (client, streams) in _clients)
                {
                    if (IsAnonymous(client) && streams.Count > most)
                    {
                        (_largest, most) = (client, streams.Count);
                    }
                }

                _largestFoundAt = now;
            }

            var own = newcomer is not null && _clients.TryGetValue(newcomer, out var held) ? held.Count : 0;
            if (_largest is null || string.Equals(_largest, newcomer, StringComparison.Ordinal) || !_clients.TryGetValue(_largest, out var largest)
                || (newcomer is not null && largest.Count <= own))
            {
                return null;
            }

            var victim = (_largest, CapacityShares.LeastRecentlyUsed(largest));
            Forget(victim.Item1, victim.Item2);
            return victim;
        }
    }

    private string? _largest;
    private long _largestFoundAt;

    /// <summary>The streams anonymous clients hold, by client (a copy; the drift monitors' shares are judged on it).</summary>
    internal Dictionary<string, Dictionary<string, long>> AnonymousStreams()
    {
        lock (_gate)
        {
            return _clients.Where(static c => IsAnonymous(c.Key)).ToDictionary(static c => c.Key, static c => new Dictionary<string, long>(c.Value, StringComparer.Ordinal), StringComparer.Ordinal);
        }
    }

    /// <summary>The client a stream of this context counts against: <see langword="null"/> for an API key, else its anonymous client as the quota knows it (an address, or <see cref="OverflowClient"/> when it holds the stream there).</summary>
    internal string? AnonymousClientOf(HttpContext context, string streamId)
    {
        if (context.User.FindFirstValue(ClaimTypes.Name) is not null)
        {
            return null;
        }

        var client = RefusalTracker.ClientOf(context, _options.AnonymousIPv6PrefixLength);
        lock (_gate)
        {
            return !(_clients.TryGetValue(client, out var streams) && streams.ContainsKey(streamId))
                && _clients.TryGetValue(OverflowClient, out var shared) && shared.ContainsKey(streamId)
                ? OverflowClient
                : client;
        }
    }

    /// <summary>Forgets a stream of an anonymous client that the stream table refused (it holds no place).</summary>
    internal void ForgetStream(string client, string streamId)
    {
        lock (_gate)
        {
            Forget(client, streamId);
        }
    }

    private void Forget(string client, string streamId)
    {
        if (_clients.TryGetValue(client, out var streams) && streams.Remove(streamId))
        {
            if (IsTracked(client))
            {
                _anonymousStreams--;
            }

            if (streams.Count == 0)
            {
                _clients.Remove(client);
                if (IsTracked(client))
                {
                    _tracked.Set(--_anonymous);
                }
            }
        }
    }

    private static bool IsAnonymous(string client) => client.StartsWith("address:", StringComparison.Ordinal);

    /// <summary>Whether a new stream of an anonymous client (with <paramref name="streams"/>, or none yet) finds no room.</summary>
    private bool Full(Dictionary<string, long>? streams) =>
        (streams is null && _anonymous >= _options.MaxTrackedClients) || _anonymousStreams >= _options.MaxTrackedClients;

    private static bool IsTracked(string client) => client.StartsWith("address:", StringComparison.Ordinal) && client != OverflowClient;

    private long IdleTicks => (long)(_options.StreamIdleTimeout.TotalSeconds * _time.TimestampFrequency);

    private void ExpireAll(long before)
    {
        foreach (var (client, streams) in _clients.ToList())
        {
            var expired = Expire(streams, before);
            if (IsTracked(client))
            {
                _anonymousStreams -= expired;
            }

            if (streams.Count == 0)
            {
                _clients.Remove(client);
                if (IsTracked(client))
                {
                    _anonymous--;
                }
            }
        }

        _tracked.Set(_anonymous);
    }

    private static int Expire(Dictionary<string, long> streams, long before)
    {
        var expired = 0;
        foreach (var (id, last) in streams.ToList())
        {
            if (last < before)
            {
                streams.Remove(id);
                expired++;
            }
        }

        return expired;
    }
}
