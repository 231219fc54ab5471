using System.Collections.Concurrent;
using System.Globalization;
using System.Security.Claims;
using Microsoft.Extensions.Options;
using Prometheus;

namespace Har.Service.Security;

/// <summary>
/// Counts refused requests (401, 403, 404, 405, 429) in metrics and per client, instead of auditing each one:
/// a refusal costs a counter increment, so no client, keyed or not, can grow the audit log by being refused.
/// <see cref="RefusalSummaryService"/> writes one audit entry per interval with the counts (top clients only).
/// </summary>
internal sealed class RefusalTracker
{
    /// <summary>Most clients tracked per interval; the rest are counted together as <see cref="OtherClients"/>.</summary>
    public const int MaxClients = 1024;

    public const string OtherClients = "(other clients)";

    private static readonly int[] Statuses = [401, 403, 404, 405, 429];

    private static readonly Counter Refused = Metrics.CreateCounter(
        "har_http_refused_total",
        "Requests refused before or by routing and authorization (401, 403, 404, 405, 429); counted, never audited one by one.",
        new CounterConfiguration { LabelNames = ["status"] });

    private readonly Counter.Child[] _children;
    private ConcurrentDictionary<string, ClientCounts> _clients = new(StringComparer.Ordinal);

    private readonly int _ipv6PrefixLength;

    public RefusalTracker(IOptions<ServiceOptions> options)
    {
        _ipv6PrefixLength = options.Value.AnonymousIPv6PrefixLength;
        _children = [.. Statuses.Select(s => Refused.WithLabels(s.ToString(CultureInfo.InvariantCulture)))];
    }

    /// <summary>Whether a status is a refusal (counted here, never audited per request).</summary>
    public static bool IsRefusal(int status) => Array.IndexOf(Statuses, status) >= 0;

    /// <summary>Counts one refused request of the context's client (key name, or remote address when anonymous).</summary>
    public void Record(HttpContext context, int status)
    {
        var slot = Array.IndexOf(Statuses, status);
        if (slot < 0)
        {
            return;
        }

        _children[slot].Inc();
        var client = ClientOf(context, _ipv6PrefixLength);
        var clients = Volatile.Read(ref _clients);
        if (!clients.TryGetValue(client, out var counts))
        {
            counts = clients.Count < MaxClients ? clients.GetOrAdd(client, _ => new ClientCounts()) : clients.GetOrAdd(OtherClients, _ => new ClientCounts());
        }

        Interlocked.Increment(ref counts.Counts[slot]);
    }

    /// <summary>Takes the counts since the last call (and starts a new interval).</summary>
    public IReadOnlyList<(string Client, long Total, IReadOnlyDictionary<int, long> ByStatus)> Drain()
    {
        var clients = Interlocked.Exchange(ref _clients, new ConcurrentDictionary<string, ClientCounts>(StringComparer.Ordinal));
        var result = new List<(string, long, IReadOnlyDictionary<int, long>)>(clients.Count);
        foreach (var (client, counts) in clients)
        {
            var byStatus = new Dictionary<int, long>();
            long total = 0;
            for (var i = 0; i < Statuses.Length; i++)
            {
                var n = Interlocked.Read(ref counts.Counts[i]);
                if (n > 0)
                {
                    byStatus[Statuses[i]] = n;
                    total += n;
                }
            }

            if (total > 0)
            {
                result.Add((client, total, byStatus));
            }
        }

        result.Sort((a, b) => b.Item2.CompareTo(a.Item2));
        return result;
    }

    /// <summary>
    /// The key's name, or "address:" and the anonymous client (<see cref="ClientAddress"/>: the IPv4 address, or the IPv6
    /// prefix such as <c>2001:db8:1:2::/64</c>), at most 64 characters either way.
    /// </summary>
    public static string ClientOf(HttpContext context, int ipv6PrefixLength)
    {
        var client = context.User.FindFirstValue(ClaimTypes.Name) is { } name
            ? "key:" + name
            : "address:" + ClientAddress.Describe(ClientAddress.Group(context.Connection.RemoteIpAddress, ipv6PrefixLength), ipv6PrefixLength);
        return client.Length <= 64 ? client : client[..64];
    }

    private sealed class ClientCounts
    {
        public readonly long[] Counts = new long[Statuses.Length];
    }
}

/// <summary>Counts the final status of every request in <see cref="RefusalTracker"/> (outermost, so it sees 401/403/429 too).</summary>
internal sealed class RefusalCountingMiddleware(RequestDelegate next, RefusalTracker tracker)
{
    public async Task InvokeAsync(HttpContext context)
    {
        try
        {
            await next(context);
        }
        finally
        {
            var status = context.Response.StatusCode;
            if (RefusalTracker.IsRefusal(status))
            {
                tracker.Record(context, status);
            }
        }
    }
}
