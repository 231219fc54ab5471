using System.Globalization;
using System.Threading.RateLimiting;
using Microsoft.Extensions.Options;

namespace Har.Service.Security;

/// <summary>
/// Windows per second per client, charged with the windows of each prediction request (a stream append is
/// charged the most windows it can complete, ⌈frames / stride⌉) before anything is scored or appended. The
/// model's batching queue is first come, first served, so the share of the model a client gets is the share
/// of windows it sends: anonymous clients (per <see cref="ClientAddress"/>: IPv4 address or IPv6 /64, at most
/// <see cref="ServiceOptions.MaxTrackedClients"/> of them, <see cref="RateLimitClients"/>) get <see cref="ServiceOptions.AnonymousWindowsPerSecond"/>,
/// each API key <see cref="ServiceOptions.KeyedWindowsPerSecond"/>. Beyond it: 429 with Retry-After, nothing done.
/// </summary>
internal sealed class WindowBudget : IDisposable
{
    private readonly PartitionedRateLimiter<HttpContext> _limiter;

    public WindowBudget(IOptions<ServiceOptions> options, RateLimitClients clients)
    {
        var o = options.Value;
        _limiter = PartitionedRateLimiter.Create<HttpContext, object>(ctx =>
            clients.PartitionOf(ctx) is string name
                ? RateLimitPartition.GetTokenBucketLimiter<object>(name, _ => Bucket(o.KeyedWindowsPerSecond, o.MaxWindowsPerRequest))
                : RateLimitPartition.GetTokenBucketLimiter(clients.PartitionOf(ctx), _ => Bucket(o.AnonymousWindowsPerSecond, o.MaxWindowsPerRequest)));
    }

    /// <summary>Charges <paramref name="windows"/> to the client; when its budget is spent, writes 429 (Retry-After, problem details) and returns <see langword="true"/>.</summary>
    public async ValueTask<bool> RefuseIfOverAsync(HttpContext context, int windows)
    {
        using var lease = _limiter.AttemptAcquire(context, Math.Max(1, windows));
        if (lease.IsAcquired)
        {
            return false;
        }

        var retry = lease.TryGetMetadata(MetadataName.RetryAfter, out var after) ? after : TimeSpan.FromSeconds(1);
        context.Response.Headers.RetryAfter = Math.Max(1, (int)Math.Ceiling(retry.TotalSeconds)).ToString(CultureInfo.InvariantCulture);
        await Results.Problem(
            statusCode: StatusCodes.Status429TooManyRequests,
            title: "Too many windows",
            detail: $"This client's window budget is spent ({windows} windows asked); retry after the number of seconds in Retry-After. Nothing was scored or appended.")
            .ExecuteAsync(context);
        return true;
    }

    public void Dispose() => _limiter.Dispose();

    /// <summary>The depth of a client's bucket: one second of windows, at least two of the largest requests.</summary>
    public static int TokenLimit(int perSecond, int maxWindowsPerRequest) => Math.Max(perSecond, 2 * maxWindowsPerRequest);

    /// <summary>A bucket of one second of windows, at least two of the largest requests deep (a request never needs more than it holds).</summary>
    private static TokenBucketRateLimiterOptions Bucket(int perSecond, int maxWindowsPerRequest) => new()
    {
        TokenLimit = TokenLimit(perSecond, maxWindowsPerRequest),
        TokensPerPeriod = perSecond,
        ReplenishmentPeriod = TimeSpan.FromSeconds(1),
        QueueLimit = 0,
        AutoReplenishment = true,
    };
}
