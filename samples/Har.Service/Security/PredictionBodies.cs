using System.Buffers;
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
/// at the deadline (408). What moves is memory: the buffers of bodies still arriving, which the budgets bound — a client
/// over its own budget gets 429, the service over its total 503. A buffer grows with the bytes that arrived (at most
/// twice them, from 16 KiB) and is charged when it grows, never for a declared length alone: budgets charged for
/// declared lengths let connections that declared 4 MiB and sent nothing hold a key's budget (every client of the key
/// got 429) or, from 32 addresses, the service's (everyone got 503), at no bandwidth. A body declared larger than its
/// client's or the service's budget has left is refused before it is read. Buffers come from a pool of its own that
/// keeps at most a few of each size (the shared pool kept hundreds of megabytes after a flood); once a flood of bodies is
/// over (<see cref="FloodEnded"/>), <see cref="Infrastructure.StreamMaintenance"/> drops them and gives the memory back. The buffer read here is
/// the one the endpoint parses (<see cref="RequestBodies.ReadAsync"/> takes it), so nothing is copied twice.
/// </remarks>
internal sealed class PredictionBodies : IDisposable
{
    private const int Kib = 1024;

    private static readonly Prometheus.Gauge Arriving = Prometheus.Metrics.CreateGauge(
        "har_service_arriving_body_bytes",
        "Bytes of buffer held by prediction request bodies, read before their prediction slot and charged as their bytes arrive, until their request is answered; at most Har:Service:MaxArrivingBodyBytes.");

    private readonly TimeSpan _deadline;
    private readonly PartitionedRateLimiter<HttpContext> _perClientBudget;
    private readonly ConcurrencyLimiter _totalBudget;
    private readonly double _seconds;
    private readonly long _maxBody;
    private readonly long _perClient;
    private readonly long _total;
    private readonly long _maxBuffer;
    private System.Buffers.ArrayPool<byte> _buffers;
    private long _peakKib;

    public PredictionBodies(ServiceOptions options, RateLimitClients clients)
    {
        _seconds = options.PredictionBodySeconds;
        _deadline = options.PredictionBodySeconds > 0 ? TimeSpan.FromSeconds(options.PredictionBodySeconds) : Timeout.InfiniteTimeSpan;
        _maxBody = options.MaxRequestBodyBytes;
        _perClient = options.MaxArrivingBodyBytesPerClient;
        _total = options.MaxArrivingBodyBytes;

        // Permits are KiB of buffer.
        _perClientBudget = PartitionedRateLimiter.Create<HttpContext, object>(ctx => RateLimitPartition.GetConcurrencyLimiter(
            clients.PartitionOf(ctx),
            _ => new ConcurrencyLimiterOptions { PermitLimit = Permits(_perClient), QueueLimit = 0 }));
        _totalBudget = new ConcurrencyLimiter(new ConcurrencyLimiterOptions { PermitLimit = Permits(_total), QueueLimit = 0 });

        // Up to 8 buffers of each power-of-two size are kept for reuse (about 64 MiB at most with 4 MiB bodies); more are
        // left to the garbage collector.
        _maxBuffer = Math.Min(Array.MaxLength, Math.Max(_maxBody, 16 * Kib));
        _buffers = System.Buffers.ArrayPool<byte>.Create((int)_maxBuffer, 8);
    }

    /// <summary>Bytes of buffer the bodies arriving now hold (what <c>har_service_arriving_body_bytes</c> shows).</summary>
    public long InUseBytes => (Permits(_total) - (_totalBudget.GetStatistics()?.CurrentAvailablePermits ?? Permits(_total))) * (long)Kib;

    /// <summary>The most bytes of buffer arriving bodies held at once since the last <see cref="ReleaseMemory"/>.</summary>
    public long PeakBytesSinceRelease => Volatile.Read(ref _peakKib) * Kib;

    /// <summary>
    /// Whether the bodies that arrived at once since the last release held at least an eighth of
    /// <see cref="ServiceOptions.MaxArrivingBodyBytes"/> (64 MiB by default) and hold at most a quarter of that peak now:
    /// a flood of bodies is over, and its buffers are garbage the collector of an idle process would keep.
    /// </summary>
    public bool FloodEnded
    {
        get
        {
            var peak = PeakBytesSinceRelease;
            return peak > 0 && peak >= _total / 8 && InUseBytes <= peak / 4;
        }
    }

    /// <summary>
    /// Drops the buffers kept for reuse (up to 8 of each size: about 64 MiB with 4 MiB bodies) and starts the peak again
    /// from what is in use; called before the compacting collection that gives a flood's memory back. Bodies still
    /// arriving return their buffers to the pool they came from.
    /// </summary>
    public void ReleaseMemory()
    {
        Volatile.Write(ref _buffers, System.Buffers.ArrayPool<byte>.Create((int)_maxBuffer, 8));
        Volatile.Write(ref _peakKib, InUseBytes / Kib);
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

        var charge = new Charge();
        PrefetchedBody? body = null;
        try
        {
            try
            {
                body = await ReadAsync(context, charge);
            }
            catch (BadHttpRequestException ex) when (!context.Response.HasStarted)
            {
                // Kestrel's own refusals while the body arrives (larger than MaxRequestBodyBytes without a declared length,
                // slower than the minimum data rate, malformed chunks): answered here, so the response, its problem body,
                // the logs and the metrics say what happened (they escaped as an exception and were counted as 200).
                var detail = ex.StatusCode switch
                {
                    StatusCodes.Status413PayloadTooLarge => string.Create(CultureInfo.InvariantCulture, $"The request body is larger than {_maxBody} bytes (Har:Service:MaxRequestBodyBytes); send fewer windows or frames per request."),
                    StatusCodes.Status408RequestTimeout => "The request body arrived slower than the minimum data rate the server accepts; send it at a steady rate, or in smaller requests.",
                    _ => ex.Message,
                };
                await RefuseAsync(context, ex.StatusCode, Microsoft.AspNetCore.WebUtilities.ReasonPhrases.GetReasonPhrase(ex.StatusCode), detail, retryAfter: false);
                return;
            }

            if (body is null)
            {
                return; // refused (a budget, the deadline, the client gone): the response is written where there is one
            }

            // The endpoint parses the buffer itself (RequestBodies.ReadAsync); any other reader gets it as the body.
            context.Features.Set(body);
            context.Request.Body = new MemoryStream(body.Array, 0, body.Length, writable: false);
            await next(context);
        }
        finally
        {
            body?.Dispose();
            charge.Dispose();
        }
    }

    /// <summary>
    /// Reads the body into a buffer that grows with the bytes that arrived, taking budget for each size it grows to;
    /// null when it was refused (over a budget, past the deadline: answered) or the client went away.
    /// </summary>
    private async Task<PrefetchedBody?> ReadAsync(HttpContext context, Charge charge)
    {
        var request = context.Request;
        if (request.ContentLength is { } declared && declared > 0 && !await FitsAsync(context, declared))
        {
            return null;
        }

        // The deadline cancels the pending read (not through a token: a read cancelled by its token leaves Kestrel's body
        // reader "in progress", and its draining of the rest then failed with an Error in the log at every 408).
        var reader = request.BodyReader;
        var pool = Volatile.Read(ref _buffers);
        using var deadline = new CancellationTokenSource(_deadline);
        using var onDeadline = deadline.Token.Register(static r => ((System.IO.Pipelines.PipeReader)r!).CancelPendingRead(), reader);
        byte[]? buffer = null;
        var used = 0;
        var capacity = 0L; // what the budgets are charged for (the pool may hand out a larger array)
        try
        {
            while (true)
            {
                System.IO.Pipelines.ReadResult result;
                try
                {
                    result = await reader.ReadAsync(context.RequestAborted);
                }
                catch (OperationCanceledException) when (context.RequestAborted.IsCancellationRequested)
                {
                    return null; // the client went away: nobody to answer
                }

                var data = result.Buffer;
                if (result.IsCanceled)
                {
                    reader.AdvanceTo(data.Start);
                    await RefuseAsync(context, StatusCodes.Status408RequestTimeout, "Request body too slow", string.Create(CultureInfo.InvariantCulture,
                        $"The request body did not arrive in full within {_seconds:0.###} s (Har:Service:PredictionBodySeconds); send it faster, or in smaller requests."), retryAfter: false);
                    return null;
                }

                if (!data.IsEmpty)
                {
                    var needed = used + data.Length;
                    if (buffer is null || needed > capacity)
                    {
                        // Kestrel refuses a body past MaxRequestBodySize (the same limit) as it reads: this is only a guard.
                        if (needed > _maxBody)
                        {
                            throw new BadHttpRequestException("The request body is too large.", StatusCodes.Status413PayloadTooLarge);
                        }

                        var size = Math.Max(needed, buffer is null ? 16 * Kib : 2 * capacity);
                        size = Math.Max(needed, Math.Min(size, Math.Min(request.ContentLength ?? _maxBody, Math.Min(_maxBody, Array.MaxLength))));
                        var permits = Permits(size) - charge.Permits;
                        if (permits > 0 && !await ChargeAsync(context, charge, permits))
                        {
                            reader.AdvanceTo(data.Start);
                            return null;
                        }

                        capacity = size;
                        if (buffer is null || size > buffer.Length)
                        {
                            var grown = pool.Rent((int)size);
                            if (buffer is not null)
                            {
                                buffer.AsSpan(0, used).CopyTo(grown);
                                pool.Return(buffer);
                            }

                            buffer = grown;
                        }
                    }

                    data.CopyTo(buffer.AsSpan(used));
                    used = (int)needed;
                }

                reader.AdvanceTo(data.End);
                if (result.IsCompleted)
                {
                    var done = buffer is null ? new PrefetchedBody([], 0, null) : new PrefetchedBody(buffer, used, pool);
                    buffer = null;
                    return done;
                }
            }
        }
        finally
        {
            if (buffer is not null)
            {
                pool.Return(buffer);
            }
        }
    }

    /// <summary>A declared length its client's or the service's remaining budget cannot take is refused before any of it is read.</summary>
    private async Task<bool> FitsAsync(HttpContext context, long declared)
    {
        var permits = Permits(declared);
        if (_perClientBudget.GetStatistics(context) is { } client && client.CurrentAvailablePermits < permits)
        {
            await RefuseClientAsync(context);
            return false;
        }

        if (_totalBudget.GetStatistics() is { } total && total.CurrentAvailablePermits < permits)
        {
            await RefuseTotalAsync(context);
            return false;
        }

        return true;
    }

    /// <summary>Takes <paramref name="permits"/> KiB from the client's and the service's budgets; false (answered) when either is spent.</summary>
    private async Task<bool> ChargeAsync(HttpContext context, Charge charge, int permits)
    {
        var client = _perClientBudget.AttemptAcquire(context, permits);
        if (!client.IsAcquired)
        {
            client.Dispose();
            await RefuseClientAsync(context);
            return false;
        }

        var total = _totalBudget.AttemptAcquire(permits);
        if (!total.IsAcquired)
        {
            client.Dispose();
            total.Dispose();
            await RefuseTotalAsync(context);
            return false;
        }

        charge.Add(client, total, permits);
        var inUse = InUseBytes / Kib;
        for (var peak = Volatile.Read(ref _peakKib); inUse > peak; peak = Volatile.Read(ref _peakKib))
        {
            if (Interlocked.CompareExchange(ref _peakKib, inUse, peak) == peak)
            {
                break;
            }
        }

        return true;
    }

    /// <summary>The budget one body holds: its leases, released (and the gauge lowered) when the request is done.</summary>
    private sealed class Charge : IDisposable
    {
        private readonly List<RateLimitLease> _leases = new(4);

        public int Permits { get; private set; }

        public void Add(RateLimitLease client, RateLimitLease total, int permits)
        {
            _leases.Add(client);
            _leases.Add(total);
            Permits += permits;
            Arriving.Inc(permits * (double)Kib);
        }

        public void Dispose()
        {
            foreach (var lease in _leases)
            {
                lease.Dispose();
            }

            _leases.Clear();
            Arriving.Dec(Permits * (double)Kib);
            Permits = 0;
        }
    }

    private Task RefuseClientAsync(HttpContext context) => RefuseAsync(context, StatusCodes.Status429TooManyRequests, "Too many requests", string.Create(CultureInfo.InvariantCulture,
        $"This client already has up to {_perClient} bytes of request bodies arriving (Har:Service:MaxArrivingBodyBytesPerClient); retry after the number of seconds in Retry-After."), retryAfter: true);

    private Task RefuseTotalAsync(HttpContext context) => RefuseAsync(context, StatusCodes.Status503ServiceUnavailable, "Service Unavailable", string.Create(CultureInfo.InvariantCulture,
        $"The service is receiving up to {_total} bytes of request bodies at once (Har:Service:MaxArrivingBodyBytes); retry after the number of seconds in Retry-After."), retryAfter: true);

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
internal sealed class PrefetchedBody(byte[] array, int length, System.Buffers.ArrayPool<byte>? pool) : IDisposable
{
    private int _returned;

    public byte[] Array { get; } = array;

    public int Length { get; } = length;

    public void Dispose()
    {
        if (pool is not null && Interlocked.Exchange(ref _returned, 1) == 0)
        {
            pool.Return(Array);
        }
    }
}
