using System.Globalization;
using System.Threading.RateLimiting;
using Har.Service.Security;
using Microsoft.AspNetCore.Authentication;
using Microsoft.AspNetCore.Authorization;
using Microsoft.AspNetCore.Diagnostics;
using Microsoft.AspNetCore.RateLimiting;

namespace Har.Service.Infrastructure;

/// <summary>The host's cross-cutting plumbing: keys, CORS, rate limits, body limits, problem details.</summary>
internal static partial class HostingExtensions
{
    public const string CorsPolicy = "har-cors";

    private static readonly object InfraPartition = new();

    public static WebApplicationBuilder AddServiceSecurity(this WebApplicationBuilder builder, ServiceOptions options, List<ApiKeyEntry> keys)
    {
        builder.Services.AddSingleton(new ApiKeyStore(keys));
        builder.Services.AddAuthentication(ApiKeyAuthenticationHandler.SchemeName)
            .AddScheme<AuthenticationSchemeOptions, ApiKeyAuthenticationHandler>(ApiKeyAuthenticationHandler.SchemeName, null);
        builder.Services.AddAuthorizationBuilder()
            .AddPolicy(Roles.OperatorPolicy, p => p.RequireRole(Roles.Operator))
            .AddPolicy(Roles.AuditorPolicy, p => p.RequireRole(Roles.Auditor, Roles.Operator))
            .AddPolicy(Roles.LabelPolicy, p => p.RequireRole(Roles.Labeller, Roles.Operator))
            .AddPolicy(Roles.PredictPolicy, p =>
            {
                if (options.PredictRequiresKey)
                {
                    p.RequireRole(Roles.Predictor, Roles.Operator, Roles.Auditor);
                }
                else
                {
                    p.RequireAssertion(_ => true);
                }
            });

        if (options.CorsOrigins.Any(o => o.Trim() == "*"))
        {
            throw new InvalidOperationException("Har:Service:CorsOrigins contains '*'; list the allowed origins explicitly (API keys are credentials, so a wildcard origin is never allowed).");
        }

        builder.Services.AddCors(c => c.AddPolicy(CorsPolicy, p =>
        {
            if (options.CorsOrigins.Count > 0)
            {
                p.WithOrigins([.. options.CorsOrigins]).WithMethods("GET", "POST").WithHeaders("Content-Type", ApiKeyAuthenticationHandler.Header, "Authorization").DisallowCredentials();
            }
        }));
        return builder;
    }

    /// <summary>
    /// A credential that was presented but is not valid (an unknown key, another scheme, a malformed, empty or repeated
    /// header) is a 401 on every route, also where anonymous callers are served (predictions without
    /// <c>PredictRequiresKey</c>, health, metrics): a mistyped key is noticed instead of being served as anonymous.
    /// A request without any credential stays anonymous where that is allowed. The authentication result is the one
    /// <c>UseAuthentication</c> computed (the handler runs once per request); the challenge says what was wrong.
    /// </summary>
    public static WebApplication UseCredentialsOrNone(this WebApplication app)
    {
        app.Use(async (context, next) =>
        {
            if ((await context.AuthenticateAsync()).Failure is not null)
            {
                await context.ChallengeAsync();
                return;
            }

            await next(context);
        });
        return app;
    }

    /// <summary>
    /// A request whose method is not an HTTP method (RFC 9110's GET, HEAD, POST, PUT, DELETE, CONNECT, OPTIONS, TRACE
    /// and RFC 5789's PATCH, case-sensitive: <c>X1Z</c>, <c>PROPFIND</c>, <c>get</c>) is answered as routing decided,
    /// 404 for no such resource or 405 with the resource's methods in <c>Allow</c>, but here, between routing and the
    /// HTTP metrics: prometheus-net labels every series with the request's method, so each invented method added a
    /// series to every HTTP metric and <c>/metrics</c> grew without bound. No endpoint runs for such a method (a route
    /// that takes any method, <c>/metrics</c>, answers 405 too). Refusals are still counted (har_http_refused_total).
    /// </summary>
    public static WebApplication UseHttpMethodsOnly(this WebApplication app)
    {
        app.Use((context, next) =>
        {
            if (context.Request.Method != NotAMethod)
            {
                if (context.GetEndpoint() is { DisplayName: "405 HTTP Method Not Supported" } and not RouteEndpoint)
                {
                    // Routing's 405 for a method the path's routes do not take: HEAD beside GET in its Allow.
                    context.Response.OnStarting(static state => AddHeadToAllow((HttpContext)state), context);
                }

                return next(context);
            }

            switch (context.GetEndpoint())
            {
                case null:
                    context.Response.StatusCode = StatusCodes.Status404NotFound;
                    return Task.CompletedTask;
                case RouteEndpoint route:
                    // A route that takes every method (/metrics).
                    context.Response.StatusCode = StatusCodes.Status405MethodNotAllowed;
                    context.Response.Headers.Allow = WithHead(string.Join(", ", route.Metadata.GetMetadata<IHttpMethodMetadata>()?.HttpMethods ?? ["GET"]));
                    return Task.CompletedTask;
                case { RequestDelegate: { } rejection }:
                    // Routing's own 405 endpoint for a path whose routes take other methods: it sets the status and Allow
                    // (every method of the path's routes: the request reached routing under a name no route takes).
                    context.Response.OnStarting(static state => AddHeadToAllow((HttpContext)state), context);
                    return rejection(context);
                default:
                    context.Response.StatusCode = StatusCodes.Status405MethodNotAllowed;
                    return Task.CompletedTask;
            }
        });
        return app;
    }

    /// <summary>The method a request that has no HTTP method reaches routing under: no route takes it.</summary>
    private const string NotAMethod = "X-HAR-NOT-A-METHOD";

    /// <summary>
    /// Before routing: a request whose method is not an HTTP method (case-sensitive; see <see cref="UseHttpMethodsOnly"/>)
    /// reaches routing under a name no route takes, so routing's 405 lists every method of the resource in <c>Allow</c>
    /// (found from outside: <c>get /v1/models</c> matched the GET route, ignoring case, and its 405 said only
    /// <c>Allow: GET</c> where the resource also takes POST). <c>HEAD</c> is served by the <c>GET</c> endpoint (RFC 9110
    /// section 9.3.2; Kestrel sends the headers a GET would, without the content): it was 405 on every route, and load
    /// balancers' probes often use it.
    /// </summary>
    public static WebApplication UseMethodsBeforeRouting(this WebApplication app)
    {
        app.Use((context, next) =>
        {
            var method = context.Request.Method;
            if (method is "HEAD")
            {
                context.Request.Method = HttpMethods.Get; // Kestrel still knows the request is HEAD and sends no body
            }
            else if (method is not ("GET" or "POST" or "PUT" or "DELETE" or "CONNECT" or "OPTIONS" or "TRACE" or "PATCH"))
            {
                context.Request.Method = NotAMethod;
            }

            return next(context);
        });
        return app;
    }

    private static Task AddHeadToAllow(HttpContext context)
    {
        if (context.Response.Headers.Allow.ToString() is { Length: > 0 } allow)
        {
            context.Response.Headers.Allow = WithHead(allow);
        }

        return Task.CompletedTask;
    }

    /// <summary>An <c>Allow</c> value with HEAD beside GET (the GET endpoints serve HEAD).</summary>
    internal static string WithHead(string allow)
    {
        var methods = allow.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries).ToList();
        if (methods.Contains("GET") && !methods.Contains("HEAD"))
        {
            methods.Insert(methods.IndexOf("GET") + 1, "HEAD");
        }

        return string.Join(", ", methods);
    }

    /// <summary>
    /// The forwarded-headers options for <see cref="ServiceOptions.TrustedProxies"/>: <c>X-Forwarded-For</c> only, its last
    /// address (the one the trusted proxy added), from the listed proxies only; null when none is listed.
    /// </summary>
    /// <exception cref="InvalidOperationException">An entry is neither an IP address nor a network in CIDR notation.</exception>
    public static ForwardedHeadersOptions? ForwardedHeaders(ServiceOptions options)
    {
        if (options.TrustedProxies.Count == 0)
        {
            return null;
        }

        var forwarded = new ForwardedHeadersOptions { ForwardedHeaders = Microsoft.AspNetCore.HttpOverrides.ForwardedHeaders.XForwardedFor, ForwardLimit = 1 };
        forwarded.KnownProxies.Clear();
        forwarded.KnownIPNetworks.Clear();
        foreach (var entry in options.TrustedProxies)
        {
            var text = entry.Trim();
            if (text.Contains('/', StringComparison.Ordinal) && System.Net.IPNetwork.TryParse(text, out var network))
            {
                forwarded.KnownIPNetworks.Add(network);
            }
            else if (!text.Contains('/', StringComparison.Ordinal) && System.Net.IPAddress.TryParse(text, out var address))
            {
                forwarded.KnownProxies.Add(address);
            }
            else
            {
                throw new InvalidOperationException($"Har:Service:TrustedProxies contains '{entry}', which is neither an IP address (10.0.0.7, fd00::7) nor a network in CIDR notation (10.0.0.0/8, fd00::/8).");
            }
        }

        return forwarded;
    }

    /// <summary>
    /// The HTTP request metrics, labelled by status code, method and endpoint (the route pattern) only. prometheus-net's
    /// defaults also label by the route values named <c>controller</c> and <c>action</c> (MVC's), and
    /// <c>/v1/rollouts/current/{action}</c> has one: each action an anonymous client invented (answered 401) added 21
    /// series, so 50 requests added 1,071 lines to <c>/metrics</c>, without bound.
    /// </summary>
    public static void HttpMetricsOptions(Prometheus.HttpMetrics.HttpMiddlewareExporterOptions o)
    {
        string[] labels = ["code", "method", "endpoint"];
        o.RequestCount.Counter = s_requestsReceived = Prometheus.Metrics.CreateCounter(
            "http_requests_received_total",
            "HTTP requests processed, by status code, method and endpoint (route pattern).",
            new Prometheus.CounterConfiguration { LabelNames = labels });
        o.RequestDuration.Histogram = Prometheus.Metrics.CreateHistogram(
            "http_request_duration_seconds",
            "Duration of HTTP requests, by status code, method and endpoint (route pattern).",
            new Prometheus.HistogramConfiguration { LabelNames = labels, Buckets = Prometheus.Histogram.ExponentialBuckets(0.001, 2, 16) });
        o.InProgress.Gauge = Prometheus.Metrics.CreateGauge(
            "http_requests_in_progress",
            "HTTP requests in progress, by method and endpoint (route pattern).",
            new Prometheus.GaugeConfiguration { LabelNames = ["method", "endpoint"] });
    }

    private static Prometheus.Counter? s_requestsReceived;

    /// <summary>
    /// Creates at 0 the <c>http_requests_received_total</c> series of every route, method and status the route can
    /// answer (those its metadata declares, 500 everywhere, 401 and 403 where it is authorized, 429 where it is rate
    /// limited). prometheus-net creates a series at its first request, already at 1, so <c>rate</c> and
    /// <c>increase</c> never counted that request: a lone 5xx or 401 on a route never showed (found from outside: a 400
    /// sent to a stream append read as "4xx 0" on the dashboard's status panel ten minutes later).
    /// </summary>
    /// <returns>The number of series created.</returns>
    public static int CreateHttpSeries(IEndpointRouteBuilder app)
    {
        if (s_requestsReceived is not { } counter)
        {
            return 0;
        }

        var created = 0;
        foreach (var endpoint in app.DataSources.SelectMany(d => d.Endpoints).OfType<RouteEndpoint>())
        {
            var declared = endpoint.Metadata.GetOrderedMetadata<Microsoft.AspNetCore.Http.Metadata.IProducesResponseTypeMetadata>();
            if (endpoint.RoutePattern.RawText is not { } pattern || declared.Count == 0
                || endpoint.Metadata.GetMetadata<IHttpMethodMetadata>()?.HttpMethods is not { Count: > 0 } methods)
            {
                continue;
            }

            var codes = new SortedSet<int>(declared.Select(d => d.StatusCode)) { 500 };
            if (endpoint.Metadata.GetMetadata<IAuthorizeData>() is not null)
            {
                codes.UnionWith([401, 403]);
            }

            if (!(pattern.StartsWith("/health", StringComparison.Ordinal) || pattern.StartsWith("/ready", StringComparison.Ordinal)))
            {
                codes.Add(429);
            }

            foreach (var method in methods)
            {
                foreach (var code in codes)
                {
                    counter.WithLabels(code.ToString(CultureInfo.InvariantCulture), method, pattern);
                    created++;
                }
            }
        }

        return created;
    }

    /// <summary>Stamps every JSON log line with its UTC time: outside a container runtime nothing else does.</summary>
    public static void StampLines(Microsoft.Extensions.Logging.Console.JsonConsoleFormatterOptions o)
    {
        o.TimestampFormat = "yyyy-MM-ddTHH:mm:ss.fffZ";
        o.UseUtcTimestamp = true;
    }

    /// <summary>
    /// Whether prometheus-net's meter adapter republishes an instrument on <c>/metrics</c>: every meter except the Har
    /// packages' own (<c>Har.Inference</c>, <c>Har.Drift</c>, <c>Har.Deployment</c>, <c>Har.Audit</c>), whose
    /// instruments are already there under their own names as prometheus-net collectors, and the runtime's private
    /// ones (<c>Private.InternalDiagnostics.*</c>: 32 families of QUIC internals the service does not speak).
    /// </summary>
    public static bool RepublishOnMetricsEndpoint(System.Diagnostics.Metrics.Instrument instrument) =>
        instrument.Meter.Name is not ("Har.Inference" or "Har.Drift" or "Har.Deployment" or "Har.Audit")
        && !instrument.Meter.Name.StartsWith("Private.InternalDiagnostics.", StringComparison.Ordinal);

    public static WebApplicationBuilder AddServiceLimits(this WebApplicationBuilder builder, ServiceOptions options)
    {
        // Connections in all and per remote address, kept below the open-file limit (idle connections exhausted it).
        var connections = new ConnectionLimits(options.MaxConnections, options.MaxConnectionsPerAddress, ConnectionLimits.ReadOpenFileLimit(), options.AnonymousIPv6PrefixLength);
        builder.Services.AddSingleton(connections);

        // Anonymous clients are IPv4 addresses or IPv6 /64s, and the rate limiters keep partitions for at most MaxTrackedClients of them.
        var clients = new RateLimitClients(options, TimeProvider.System);
        builder.Services.AddSingleton(clients);
        builder.WebHost.ConfigureKestrel(k =>
        {
            k.ConfigureEndpointDefaults(listen => listen.Use(connections.Middleware));
            k.Limits.MaxRequestBodySize = options.MaxRequestBodyBytes;
            k.Limits.MinRequestBodyDataRate = options.MinRequestBodyBytesPerSecond > 0
                ? new Microsoft.AspNetCore.Server.Kestrel.Core.MinDataRate(options.MinRequestBodyBytesPerSecond, TimeSpan.FromSeconds(5))
                : null;
        });
        builder.Services.AddRateLimiter(r =>
        {
            r.RejectionStatusCode = StatusCodes.Status429TooManyRequests;
            r.GlobalLimiter = PartitionedRateLimiter.Create<HttpContext, object>(ctx =>
            {
                // Health, readiness and scrapes are never throttled: an overloaded service must stay observable.
                var path = ctx.Request.Path;
                if (path.StartsWithSegments("/health") || path.StartsWithSegments("/ready") || path.StartsWithSegments("/metrics"))
                {
                    return RateLimitPartition.GetNoLimiter(InfraPartition);
                }

                return RateLimitPartition.GetTokenBucketLimiter(clients.PartitionOf(ctx), _ => new TokenBucketRateLimiterOptions
                {
                    TokenLimit = options.RateLimitBurst,
                    TokensPerPeriod = options.RateLimitPerSecond,
                    ReplenishmentPeriod = TimeSpan.FromSeconds(1),
                    QueueLimit = 0,
                    AutoReplenishment = true,
                });
            });

            r.OnRejected = (ctx, _) => RejectAsync(ctx, "The request rate limit for this client was exceeded; retry after the number of seconds in Retry-After.");
        });

        // Fair share of the models' batching queue: each client has at most MaxConcurrentPredictionsPerClient
        // prediction requests in progress (each at most MaxWindowsPerRequest windows), the next ones wait in its own
        // queue; one client's large appends cannot fill the queue that every client shares (point 6). A second rate
        // limiter middleware, after the bodies are read (PredictionBodies): a slot is held while a request is served,
        // never while its body arrives.
        var predictions = new PredictionSlots(new RateLimiterOptions
        {
            RejectionStatusCode = StatusCodes.Status429TooManyRequests,
            GlobalLimiter = PartitionedRateLimiter.Create<HttpContext, object>(ctx =>
                IsPrediction(ctx.Request)
                    ? RateLimitPartition.GetConcurrencyLimiter(clients.PartitionOf(ctx), _ => new ConcurrencyLimiterOptions
                    {
                        PermitLimit = options.MaxConcurrentPredictionsPerClient,
                        QueueLimit = options.PredictionQueuePerClient,
                        QueueProcessingOrder = QueueProcessingOrder.OldestFirst,
                    })
                    : RateLimitPartition.GetNoLimiter(InfraPartition)),
            OnRejected = (ctx, _) => RejectAsync(ctx, $"This client already has {options.MaxConcurrentPredictionsPerClient} prediction requests in progress and {options.PredictionQueuePerClient} waiting; retry after the number of seconds in Retry-After."),
        });
        builder.Services.AddSingleton(predictions);
        builder.Services.AddSingleton(new PredictionBodies(options, clients));
        return builder;
    }

    /// <summary>
    /// Gives an exception on its way out the status the exception handler (outside the HTTP metrics) will answer with, so
    /// <c>http_requests_received_total</c> counts what the client gets. Found from outside: a 413 for a body declared past
    /// the limit, and Kestrel's 408 for a body below the minimum data rate, were counted as 200 — the metrics read the
    /// status before the handler wrote it. An exception filter: nothing is caught, the stack is kept.
    /// </summary>
    public static WebApplication UseErrorStatusForMetrics(this WebApplication app)
    {
        app.Use(static async (ctx, next) =>
        {
            try
            {
                await next(ctx);
            }
            catch (Exception ex) when (SetErrorStatus(ctx, ex))
            {
                throw; // never reached: the filter only sets the status
            }
        });
        return app;
    }

    private static bool SetErrorStatus(HttpContext ctx, Exception error)
    {
        if (!ctx.Response.HasStarted)
        {
            // As the exception handler answers: a request its client abandoned is 499, anything else as classified.
            ctx.Response.StatusCode = error is OperationCanceledException && ctx.RequestAborted.IsCancellationRequested ? 499 : Classify(error).Status;
        }

        return false;
    }

    /// <summary>
    /// The prediction routes' bodies, read in full within their deadline and budgets (<see cref="PredictionBodies"/>),
    /// then their client's slot (<see cref="ServiceOptions.MaxConcurrentPredictionsPerClient"/>). After authorization:
    /// only a request that will be served has its body read.
    /// </summary>
    public static WebApplication UsePredictionBodiesAndSlots(this WebApplication app)
    {
        var bodies = app.Services.GetRequiredService<PredictionBodies>();
        app.Use(bodies.InvokeAsync);
        app.UseRateLimiter(app.Services.GetRequiredService<PredictionSlots>().Options);
        return app;
    }

    private static async ValueTask RejectAsync(OnRejectedContext ctx, string detail)
    {
        var retry = ctx.Lease.TryGetMetadata(MetadataName.RetryAfter, out var after) ? after : TimeSpan.FromSeconds(1);
        ctx.HttpContext.Response.Headers.RetryAfter = Math.Max(1, (int)Math.Ceiling(retry.TotalSeconds)).ToString(CultureInfo.InvariantCulture);
        await Results.Problem(statusCode: StatusCodes.Status429TooManyRequests, title: "Too many requests", detail: detail)
            .ExecuteAsync(ctx.HttpContext).ConfigureAwait(false);
    }

    /// <summary>The prediction slots' limiter, used by its own rate limiter middleware.</summary>
    private sealed record PredictionSlots(RateLimiterOptions Options);

    internal static bool IsPrediction(HttpRequest request) =>
        HttpMethods.IsPost(request.Method) && (request.Path.StartsWithSegments("/v1/predict") || request.Path.StartsWithSegments("/v1/streams"));

    /// <summary>
    /// Problem details for every error, with the instance (the request path, URI-escaped and bounded) and the
    /// trace id; the detail never shows a path of this machine (<paramref name="internalRoots"/>: data, models,
    /// temp and application folders become <c>&lt;data&gt;</c> …) nor an internal type name.
    /// </summary>
    public static WebApplicationBuilder AddServiceProblemDetails(this WebApplicationBuilder builder, IReadOnlyList<(string Root, string Name)> internalRoots)
    {
        // Longest root first, so a folder inside another (data/registry in data) is named by the closer one.
        var roots = internalRoots
            .Where(r => !string.IsNullOrEmpty(r.Root))
            .Select(r => (Root: Path.TrimEndingDirectorySeparator(Path.GetFullPath(r.Root)), r.Name))
            .Where(r => r.Root.Length > 1)
            .OrderByDescending(r => r.Root.Length)
            .ToArray();
        builder.Services.AddSingleton(new InternalPaths(roots));
        builder.Services.AddProblemDetails(p => p.CustomizeProblemDetails = c =>
        {
            c.ProblemDetails.Instance = c.ProblemDetails.Instance is null
                ? OperationAuditMiddleware.BoundedPath(c.HttpContext.Request.Path)
                : Scrub(c.ProblemDetails.Instance, roots);
            c.ProblemDetails.Extensions["traceId"] = c.HttpContext.TraceIdentifier;

            // ASP.NET Core names a type only for the statuses of its own table; every problem here names one (found from
            // outside: the 429s had none, where every other problem had its RFC section).
            c.ProblemDetails.Type ??= ProblemType(c.ProblemDetails.Status ?? c.HttpContext.Response.StatusCode);
            if (c.ProblemDetails.Detail is { } detail)
            {
                c.ProblemDetails.Detail = Scrub(detail, roots);
            }
        });
        return builder;
    }

    /// <summary>The RFC section that defines a status, for a problem's <c>type</c> where ASP.NET Core gives none.</summary>
    internal static string ProblemType(int status) => status switch
    {
        StatusCodes.Status413PayloadTooLarge => "https://tools.ietf.org/html/rfc9110#section-15.5.14",
        StatusCodes.Status414UriTooLong => "https://tools.ietf.org/html/rfc9110#section-15.5.15",
        StatusCodes.Status416RangeNotSatisfiable => "https://tools.ietf.org/html/rfc9110#section-15.5.17",
        StatusCodes.Status428PreconditionRequired => "https://tools.ietf.org/html/rfc6585#section-3",
        StatusCodes.Status429TooManyRequests => "https://tools.ietf.org/html/rfc6585#section-4",
        StatusCodes.Status431RequestHeaderFieldsTooLarge => "https://tools.ietf.org/html/rfc6585#section-5",
        StatusCodes.Status501NotImplemented => "https://tools.ietf.org/html/rfc9110#section-15.6.2",
        StatusCodes.Status507InsufficientStorage => "https://tools.ietf.org/html/rfc4918#section-11.5",
        _ => "about:blank",
    };

    /// <summary>Replaces the service's folders by their names and internal type names by a neutral word; bounds the length.</summary>
    internal static string Scrub(string text, IReadOnlyList<(string Root, string Name)> roots)
    {
        foreach (var (root, name) in roots)
        {
            text = text.Replace(root, name, StringComparison.Ordinal);
        }

        text = InternalTypeName().Replace(text, "the expected type");
        return text.Length <= MaxDetailLength ? text : text[..(MaxDetailLength - 1)] + "…";
    }

    /// <summary>Longest problem detail sent (characters).</summary>
    private const int MaxDetailLength = 2000;

    [System.Text.RegularExpressions.GeneratedRegex(@"\b(?:Har|System|Microsoft)\.[A-Za-z0-9_.+`\[\],]*[A-Za-z0-9_\]]", System.Text.RegularExpressions.RegexOptions.CultureInvariant)]
    private static partial System.Text.RegularExpressions.Regex InternalTypeName();

    /// <summary>Every error becomes RFC 7807 problem details; client errors keep their 4xx status.</summary>
    public static WebApplication UseServiceErrors(this WebApplication app)
    {
        app.UseExceptionHandler(handler => handler.Run(async ctx =>
        {
            var error = ctx.Features.Get<IExceptionHandlerFeature>()?.Error;
            var (status, title, detail) = Classify(error);
            if (status >= 500 && error is not null)
            {
                Log.Unhandled(ctx.RequestServices.GetRequiredService<ILoggerFactory>().CreateLogger("Har.Service"), error, ctx.Request.Method, ctx.Request.Path);
            }

            if (status == 503)
            {
                ctx.Response.Headers.RetryAfter = error is IOException or UnauthorizedAccessException or { InnerException: IOException } ? "5" : "1";
            }

            await Results.Problem(statusCode: status, title: title, detail: detail).ExecuteAsync(ctx).ConfigureAwait(false);
        }));
        app.UseStatusCodePages(async ctx =>
        {
            var status = ctx.HttpContext.Response.StatusCode;
            var detail = status switch
            {
                401 => $"This operation needs an API key: {ApiKeyAuthenticationHandler.Expected}.",
                403 => ForbiddenDetail(ctx.HttpContext),
                404 => "No such resource.",
                405 => "This method is not allowed on this resource.",
                413 => "The request body is larger than the service accepts (Har:Service:MaxRequestBodyBytes; model uploads: Har:Service:MaxModelUploadBytes).",
                415 => "The content type is not supported by this endpoint.",
                _ => null,
            };
            await Results.Problem(statusCode: status, detail: detail).ExecuteAsync(ctx.HttpContext).ConfigureAwait(false);
        });
        return app;
    }

    internal static (int Status, string Title, string Detail) Classify(Exception? error) => error switch
    {
        Har.Deployment.RolloutConflictException c => (409, "Stale rollout command", c.Message),
        // The library names its options; a service operator sets them as Har:Service:… settings.
        Har.Deployment.RolloutCommandRejectedException r => (409, "Rollout command not allowed now", r.Message
            .Replace("open it with ServingOptions.ContextFrames = ", "start the service with Har:Service:ContextFrames (environment Har__Service__ContextFrames) = ", StringComparison.Ordinal)
            .Replace("(RolloutControllerOptions.StarterMayApprove allows it)", "(the setting Har:Service:StarterMayApprove allows it)", StringComparison.Ordinal)
            .Replace("(MinCandidateAccuracy)", "(Har:Service:MinCandidateAccuracy)", StringComparison.Ordinal)
            .Replace("(MinCandidateMacroF1)", "(Har:Service:MinCandidateMacroF1)", StringComparison.Ordinal)),
        Har.Deployment.ModelIntegrityException m => (422, "Model refused", m.Message),
        Har.Inference.ModelCardException m => (422, "Invalid model", m.Message),
        Har.Inference.InferenceQueueFullException q => (503, "Overloaded", q.Message),

        // The stream table is full and no stream is idle enough to evict: a state of the service, retry later; never a 500.
        Har.Inference.StreamLimitExceededException s => (503, "Too many streams", s.Message),

        // One append would complete more windows than the windower accepts per call; nothing was appended.
        Har.Inference.WindowLimitExceededException w => (413, "Too many windows in one append", w.Message),
        Har.Deployment.ModelVersionConflictException v => (409, "Version already registered", v.Message),
        Har.Deployment.ModelInUseException u => (409, "Version in use", u.Message),
        Har.Deployment.ModelRegistryUnavailableException => (503, "Storage unavailable", "The registry cannot record this operation in its audit log right now (a read-only or full disk, or a fleet database that does not answer or ended the write); nothing was changed. Retry after the number of seconds in Retry-After; /ready tells which functions are available."),
        Har.Audit.AuditLogUnavailableException => (503, "Storage unavailable", "The audit log cannot be written right now (a read-only or full disk, or a fleet database that does not answer or ended the write); nothing was changed. Retry after the number of seconds in Retry-After; /ready tells which functions are available."),

        // An acknowledged audit entry is damaged: not the client's fault, and not to be retried; the operator repairs the log.
        Har.Audit.AuditLogCorruptedException c => (500, "Audit log damaged", $"The audit log is damaged at entry {c.EntryIndex}; an operator must run 'har audit repair'. Nothing was changed."),
        Har.Audit.AuditRecordException a => (400, "Invalid audit record", a.Message),
        BadHttpRequestException b => (b.StatusCode, b.StatusCode == 413 ? "Request body too large" : "Bad request", b.StatusCode == 413 ? $"{b.Message} (Har:Service:MaxRequestBodyBytes; model uploads: Har:Service:MaxModelUploadBytes)" : b.Message),
        System.Text.Json.JsonException j => (400, "Malformed JSON", j.Message),

        // System.Text.Json reading a string or member name that is not valid UTF-8 or holds a lone surrogate.
        InvalidOperationException t when t.TargetSite?.DeclaringType?.Assembly == typeof(System.Text.Json.JsonException).Assembly && IsInvalidTextMessage(t.Message) =>
            (400, "Invalid text in JSON", "The body holds a string or member name that is not valid UTF-8 (invalid or overlong bytes, an encoded surrogate) or an escaped lone surrogate; send JSON as valid UTF-8 text."),
        System.Text.DecoderFallbackException => (400, "Invalid text", "The request holds bytes that are not valid UTF-8 text; send text as valid UTF-8."),
        System.Text.EncoderFallbackException => (400, "Invalid text", "The request holds a lone surrogate; send valid Unicode text."),
        ArgumentException a => (400, "Invalid request", Endpoints.ClientText.Message(a)),
        FormatException f => (400, "Invalid request", f.Message),
        InvalidDataException d => (400, "Invalid request", d.Message),
        KeyNotFoundException k => (404, "Not found", k.Message),
        FileNotFoundException => (404, "Not found", "No such resource."),

        // The audit log or the registry cannot be written (read-only or full disk): the operation is refused and
        // can be retried; predictions are not affected (/ready says "operations unavailable").
        IOException or UnauthorizedAccessException or InvalidOperationException { InnerException: IOException or UnauthorizedAccessException } =>
            (503, "Storage unavailable", "The service cannot open or write its audit log or registry right now (a read-only or full disk, or a fleet database that does not answer); the request was refused, retry after the number of seconds in Retry-After. /ready tells which functions are available."),
        OperationCanceledException => (499, "Client closed request", "The request was cancelled."),
        _ => (500, "Internal error", "The service failed to process the request; the error was logged."),
    };

    private static bool IsInvalidTextMessage(string message) =>
        message.Contains("UTF-8", StringComparison.Ordinal) || message.Contains("UTF-16", StringComparison.Ordinal) || message.Contains("surrogate", StringComparison.OrdinalIgnoreCase);

    /// <summary>A 403's detail: which key the operation needs, from the endpoint's authorization policies.</summary>
    private static string ForbiddenDetail(HttpContext context)
    {
        var policies = context.GetEndpoint()?.Metadata.GetOrderedMetadata<IAuthorizeData>().Select(a => a.Policy).OfType<string>().ToArray() ?? [];
        return policies.Length == 0
            ? "The API key does not have the role this operation needs."
            : $"The API key does not have the role this operation needs: it needs {string.Join("; ", policies.Select(Roles.Describe))}.";
    }
}

/// <summary>The service's own folders (longest first) and their neutral names, for anything shown to clients (problem details, <c>/ready</c>).</summary>
internal sealed class InternalPaths((string Root, string Name)[] roots)
{
    /// <summary>The text with the service's folders replaced by their names and internal type names by a neutral word, bounded.</summary>
    public string Scrub(string text) => HostingExtensions.Scrub(text, roots);
}
