using System.Security.Claims;

namespace Har.Service.Security;

/// <summary>
/// The partition of a request in the service's rate limiters (the request rate, the prediction concurrency and the
/// window budget): the API key's name, or the anonymous client (<see cref="ClientAddress"/>) when it is tracked in
/// <see cref="Table"/>, or <see cref="TrackedClients.Overflow"/>. Decided once per request, so its limiters agree.
/// <para>
/// ASP.NET Core's partitioned limiters drop a partition 10 s after its limiter went idle (a token bucket once it is
/// full again, a concurrency limiter once nothing is held or queued), but keep any number of them: one per address
/// seen in the last seconds. An entry of the table is dropped only after it was idle for that long plus the longest
/// refill (<see cref="IdleAfter"/>), so the limiters never hold partitions of clients the table no longer counts (up to
/// their 100 ms clean-up timer), and hold at most <see cref="ServiceOptions.MaxTrackedClients"/> anonymous partitions each.
/// </para>
/// </summary>
internal sealed class RateLimitClients
{
    /// <summary>How long ASP.NET Core's partitioned rate limiter keeps an idle partition (DefaultPartitionedRateLimiter).</summary>
    public static readonly TimeSpan FrameworkIdleLimit = TimeSpan.FromSeconds(10);

    private static readonly object ItemKey = new();

    private readonly int _prefix;

    public RateLimitClients(ServiceOptions options, TimeProvider time)
    {
        _prefix = options.AnonymousIPv6PrefixLength;
        Table = new TrackedClients("rate_limits", options.MaxTrackedClients, IdleAfter(options), time);
    }

    /// <summary>Gets the anonymous clients the rate limiters keep partitions for.</summary>
    public TrackedClients Table { get; }

    /// <summary>The 10 s the framework keeps an idle partition, the longest refill of an anonymous bucket, and 5 s of slack for its clean-up timer.</summary>
    public static TimeSpan IdleAfter(ServiceOptions o)
    {
        var requests = (double)o.RateLimitBurst / o.RateLimitPerSecond;
        var windows = (double)WindowBudget.TokenLimit(o.AnonymousWindowsPerSecond, o.MaxWindowsPerRequest) / o.AnonymousWindowsPerSecond;
        return FrameworkIdleLimit + TimeSpan.FromSeconds(Math.Ceiling(Math.Max(requests, windows))) + TimeSpan.FromSeconds(5);
    }

    /// <summary>The request's partition: the key's name (a string), a tracked anonymous client (an IPAddress) or <see cref="TrackedClients.Overflow"/>.</summary>
    public object PartitionOf(HttpContext context)
    {
        if (context.Items.TryGetValue(ItemKey, out var decided) && decided is not null)
        {
            return decided;
        }

        object partition = context.User.FindFirstValue(ClaimTypes.Name) is { } name
            ? name
            : Table.PartitionOf(ClientAddress.Group(context.Connection.RemoteIpAddress, _prefix));
        context.Items[ItemKey] = partition;
        return partition;
    }
}
