using System.Globalization;
using System.Threading.RateLimiting;
using Har.Service.Endpoints;
using Microsoft.AspNetCore.Http.Features;

namespace Har.Service.Security;

/// <summary>
/// Reads a prediction request's body (<c>POST /v1/predict</c>, and <c>POST /v1/streams/…</c>: appends and feedback, which share the prediction slots) in full before the request takes one of
/// its client's prediction slots, within <see cref="ServiceOptions.PredictionBodySeconds"/>, and keeps the bytes
/// arriving at once within a budget per client and in all.
/// </summary>
/// <remarks>
/// A body read inside the slot let a slow sender hold it: 18 chunked appends dribbling 5 KB/s each (just above the
/// minimum data rate, which lets a 4 MiB body take 17 minutes) kept an address's 2 slots and 16 queued places full, and
/// with a predictor key every address using that key got 429. Read here, a slow body holds no slot, and it is cut off
/// at the deadline (408). What moves is memory: the bytes of bodies still arriving, which the budgets bound — a client
/// over its own budget gets 429, the service over its total 503, both before their bodies are read. The buffer read here
/// is the one the endpoint parses (<see cref="RequestBodies.ReadAsync"/> takes it), so nothing is copied twice.
/// </remarks>
internal sealed class PredictionBodies : IDisposable
{
    private const int Kib = 1024;

    private readonly TimeSpan _deadline;
    private readonly PartitionedRateLimiter<HttpContext> _perClientBudget;
    private readonly ConcurrencyLimiter _totalBudget;
    private readonly double _seconds;
    private readonly long _maxBody;
    private readonly long _perClient;
    private readonly long _total;

    public PredictionBodies(ServiceOptions options, RateLimitClients clients)
    {
        _seconds = options.PredictionBodySeconds;
        _deadline = options.PredictionBodySeconds > 0 ? TimeSpan.FromSeconds(options.PredictionBodySeconds) : Timeout.InfiniteTimeSpan;
        _maxBody = options.MaxRequestBodyBytes;
        _perClient = options.MaxArrivingBodyBytesPerClient;
        _total = options.MaxArrivingBodyBytes;

        // Permits are KiB of buffer, plus one: a body of exactly the largest size needs one byte more to see its end.
        _perClientBudget = PartitionedRateLimiter.Create<HttpContext, object>(ctx => RateLimitPartition.GetConcurrencyLimiter(
            clients.PartitionOf(ctx),
            _ => new ConcurrencyLimiterOptions { PermitLimit = Permits(_perClient) + 1, QueueLimit = 0 }));
        _totalBudget = new ConcurrencyLimiter(new ConcurrencyLimiterOptions { PermitLimit = Permits(_total) + 1, QueueLimit = 0 });
    }

    /// <summary>
    /// Configuration mistakes in the body limits, checked at start: a client budget below one largest body would refuse
    /// every such body, a total below a client's budget would make the client's budget meaningless.
    /// </summary>
    public static void Validate(ServiceOptions options)
    {
        if (options.MaxArrivingBodyBytesPerClient < options.MaxRequestBodyBytes)
        {
            throw new InvalidOperationException(string.Create(CultureInfo.InvariantCulture,
                $"Har:Service:MaxArrivingBodyBytesPerClient ({options.MaxArrivingBodyBytesPerClient}) is below Har:Service:MaxRequestBodyBytes ({options.MaxRequestBodyBytes}): every body of the largest accepted size would be refused; set it to at least that."));
        }

        if (options.MaxArrivingBodyBytes < options.MaxArrivingBodyBytesPerClient)
        {
            throw new InvalidOperationException(string.Create(CultureInfo.InvariantCulture,
                $"Har:Service:MaxArrivingBodyBytes ({options.MaxArrivingBodyBytes}) is below Har:Service:MaxArrivingBodyBytesPerClient ({options.MaxArrivingBodyBytesPerClient}); set the total to at least one client's budget."));
        }
    }

    /// <summary>Whether the request is one whose body is read here: a prediction route with a JSON or float32 body (others are refused by the endpoint unread).</summary>
    public static bool Reads(HttpRequest request) =>
        Infrastructure.HostingExtensions.IsPrediction(request)
        && request.HttpContext.Features.Get<IHttpRequestBodyDetectionFeature>()?.CanHaveBody != false
        && (request.HasJsonContentType() || (request.ContentType is { } ct && ct.StartsWith("application/octet-stream", StringComparison.OrdinalIgnoreCase)));

    public async Task InvokeAsync(HttpContext context, RequestDelegate next)
    {
        // A body declared larger than the limit is refused (413) by the endpoint's first read, as before.
        if (!Reads(context.Request) || context.Request.ContentLength > _maxBody)
        {
            await next(context);
            return;
        }

        var leases = new List<RateLimitLease>(4);
        PrefetchedBody? body = null;
        try
        {
            using var deadline = CancellationTokenSource.CreateLinkedTokenSource(context.RequestAborted);
            deadline.CancelAfter(_deadline);
            try
            {
                body = await ReadAsync(context, leases, deadline.Token);
            }
            catch (OperationCanceledException) when (!context.RequestAborted.IsCancellationRequested)
            {
                await RefuseAsync(context, StatusCodes.Status408RequestTimeout, "Request body too slow", string.Create(CultureInfo.InvariantCulture,
                    $"The request body did not arrive in full within {_seconds:0.###} s (Har:Service:PredictionBodySeconds); send it faster, or in smaller requests."), retryAfter: false);
                return;
            }

            if (body is null)
            {
                return; // refused over a budget: the response is written
            }

            // The endpoint parses the buffer itself (RequestBodies.ReadAsync); any other reader gets it as the body.
            context.Features.Set(body);
            context.Request.Body = new MemoryStream(body.Array, 0, body.Length, writable: false);
            await next(context);
        }
        finally
        {
            body?.Dispose();
            foreach (var lease in leases)
            {
                lease.Dispose();
            }
        }
    }

    /// <summary>Reads the body into a pooled buffer, taking budget for each size it grows to; null when a budget refused it (answered).</summary>
    private async Task<PrefetchedBody?> ReadAsync(HttpContext context, List<RateLimitLease> leases, CancellationToken ct)
    {
        var request = context.Request;
        var largest = (int)Math.Min(int.MaxValue - 1, _maxBody + 1);
        var length = request.ContentLength is > 0 ? (int)Math.Min(request.ContentLength.Value + 1, largest) : Math.Min(16 * Kib, largest);
        var held = 0;
        byte[]? buffer = null;
        var used = 0;
        try
        {
            while (true)
            {
                if (buffer is null || used == buffer.Length)
                {
                    var size = buffer is null ? length : (int)Math.Min((long)buffer.Length * 2, largest);
                    var permits = Permits(size) - held;
                    if (permits > 0)
                    {
                        var lease = _perClientBudget.AttemptAcquire(context, permits);
                        if (!lease.IsAcquired)
                        {
                            lease.Dispose();
                            await RefuseAsync(context, StatusCodes.Status429TooManyRequests, "Too many requests", string.Create(CultureInfo.InvariantCulture,
                                $"This client already has up to {_perClient} bytes of request bodies arriving (Har:Service:MaxArrivingBodyBytesPerClient); retry after the number of seconds in Retry-After."), retryAfter: true);
                            return null;
                        }

                        leases.Add(lease);
                        lease = _totalBudget.AttemptAcquire(permits);
                        if (!lease.IsAcquired)
                        {
                            lease.Dispose();
                            await RefuseAsync(context, StatusCodes.Status503ServiceUnavailable, "Service Unavailable", string.Create(CultureInfo.InvariantCulture,
                                $"The service is receiving up to {_total} bytes of request bodies at once (Har:Service:MaxArrivingBodyBytes); retry after the number of seconds in Retry-After."), retryAfter: true);
                            return null;
                        }

                        leases.Add(lease);
                        held += permits;
                    }

                    var grown = System.Buffers.ArrayPool<byte>.Shared.Rent(size);
                    if (buffer is not null)
                    {
                        buffer.AsSpan(0, used).CopyTo(grown);
                        System.Buffers.ArrayPool<byte>.Shared.Return(buffer);
                    }

                    buffer = grown;
                }

                var read = await request.Body.ReadAsync(buffer.AsMemory(used), ct);
                if (read == 0)
                {
                    var done = new PrefetchedBody(buffer, used);
                    buffer = null;
                    return done;
                }

                used += read;
            }
        }
        finally
        {
            if (buffer is not null)
            {
                System.Buffers.ArrayPool<byte>.Shared.Return(buffer);
            }
        }
    }

    private static async Task RefuseAsync(HttpContext context, int status, string title, string detail, bool retryAfter)
    {
        // The body was not read to its end: the connection cannot carry another request.
        context.Response.Headers.Connection = "close";
        if (retryAfter)
        {
            context.Response.Headers.RetryAfter = "1";
        }

        await Results.Problem(statusCode: status, title: title, detail: detail).ExecuteAsync(context);
    }

    private static int Permits(long bytes) => (int)Math.Min(int.MaxValue, (bytes + Kib - 1) / Kib);

    public void Dispose()
    {
        _perClientBudget.Dispose();
        _totalBudget.Dispose();
    }
}

/// <summary>
/// A prediction request's body, read before its slot (<see cref="PredictionBodies"/>), in a pooled buffer the
/// middleware returns when the request is done; the endpoint reads it in place.
/// </summary>
internal sealed class PrefetchedBody(byte[] array, int length) : IDisposable
{
    private int _returned;

    public byte[] Array { get; } = array;

    public int Length { get; } = length;

    public void Dispose()
    {
        if (Interlocked.Exchange(ref _returned, 1) == 0)
        {
            System.Buffers.ArrayPool<byte>.Shared.Return(Array);
        }
    }
}
