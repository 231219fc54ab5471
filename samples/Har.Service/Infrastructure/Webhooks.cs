using System.Globalization;
using System.Net;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json.Nodes;
using Har.Deployment;

namespace Har.Service.Infrastructure;

/// <summary>One HTTP webhook (configuration <c>Har:Service:Webhooks:N</c>), called at a rollout phase as Flagger calls its webhooks.</summary>
public sealed class WebhookOptions
{
    /// <summary>Name (in the audit log).</summary>
    public string Name { get; set; } = "";

    /// <summary>
    /// When: <c>confirm-rollout</c> (holds the rollout until 2xx), <c>pre-rollout</c> (holds it; fails at the failure
    /// threshold), <c>rollout</c> (every analysis interval; non-2xx is a failing interval), <c>confirm-promotion</c>
    /// (before promotion; non-2xx rolls back), <c>post-rollout</c> (after the end; informational) or <c>event</c>
    /// (notifications at each transition, filtered by <see cref="Events"/>).
    /// </summary>
    public string Type { get; set; } = "";

    /// <summary>The absolute http(s) URL the JSON body is POSTed to.</summary>
    public string Url { get; set; } = "";

    /// <summary>Timeout of one attempt.</summary>
    public TimeSpan Timeout { get; set; } = TimeSpan.FromSeconds(5);

    /// <summary>Further attempts after a timeout, a connection failure, 408, 429 or 5xx (a 4xx is an answer: not retried).</summary>
    public int Retries { get; set; } = 2;

    /// <summary>Wait before the first retry; doubled before each further one.</summary>
    public TimeSpan RetryBackoff { get; set; } = TimeSpan.FromMilliseconds(500);

    /// <summary>A shared secret: the body is signed with HMAC-SHA256 in <c>X-Har-Signature: sha256=&lt;hex&gt;</c>.</summary>
    public string? Secret { get; set; }

    /// <summary>For <c>event</c>: the notifications to send (<c>start</c>, <c>progressing</c>, <c>paused</c>, <c>awaiting-approval</c>, <c>promoting</c>, <c>success</c>, <c>rolling-back</c>, <c>rollback</c>, <c>aborted</c>, <c>failed</c>); empty: all.</summary>
    public List<string> Events { get; set; } = [];

    /// <summary>Passed through in the body's <c>metadata</c> (as Flagger's webhook metadata).</summary>
    public Dictionary<string, string> Metadata { get; set; } = [];

    internal static readonly string[] Types = ["confirm-rollout", "pre-rollout", "rollout", "confirm-promotion", "post-rollout", "event"];

    internal static readonly string[] Notifications = ["start", "progressing", "paused", "awaiting-approval", "promoting", "success", "rolling-back", "rollback", "aborted", "failed"];

    /// <summary>Checks every webhook; the message says which one is wrong and what is expected.</summary>
    internal static void Validate(IReadOnlyList<WebhookOptions> hooks)
    {
        for (var i = 0; i < hooks.Count; i++)
        {
            var h = hooks[i];
            var where = $"Har:Service:Webhooks:{i} ('{h.Name}')";
            if (string.IsNullOrWhiteSpace(h.Name))
            {
                throw new InvalidOperationException($"Har:Service:Webhooks:{i} has no Name; expected a name for the audit log.");
            }

            if (Array.IndexOf(Types, h.Type) < 0)
            {
                throw new InvalidOperationException($"{where} has Type '{h.Type}'; expected one of {string.Join(", ", Types)}.");
            }

            if (!Uri.TryCreate(h.Url, UriKind.Absolute, out var url) || (url.Scheme != Uri.UriSchemeHttp && url.Scheme != Uri.UriSchemeHttps))
            {
                throw new InvalidOperationException($"{where} has Url '{h.Url}'; expected an absolute http or https URL.");
            }

            if (h.Timeout <= TimeSpan.Zero || h.Timeout > TimeSpan.FromMinutes(5) || h.Retries is < 0 or > 10 || h.RetryBackoff < TimeSpan.Zero || h.RetryBackoff > TimeSpan.FromMinutes(1))
            {
                throw new InvalidOperationException($"{where}: expected Timeout in (0, 5 min], Retries in [0, 10] and RetryBackoff in [0, 1 min].");
            }

            foreach (var e in h.Events)
            {
                if (Array.IndexOf(Notifications, e) < 0)
                {
                    throw new InvalidOperationException($"{where} has event '{e}'; expected any of {string.Join(", ", Notifications)}.");
                }
            }
        }
    }
}

/// <summary>
/// A rollout hook that POSTs JSON to a URL: per-attempt timeout, bounded retries with doubling backoff, an
/// HMAC-SHA256 signature when a secret is set. A 2xx answer allows; anything else (after the retries) refuses,
/// with what happened — the controller audits every call's answer (<c>rollout.hook</c>).
/// </summary>
internal sealed class HttpWebhook(WebhookOptions options, HttpClient http, TimeProvider time) : IRolloutHook
{
    public string Name => options.Name;

    public RolloutHookPoint Point => options.Type switch
    {
        "confirm-rollout" => RolloutHookPoint.ConfirmRollout,
        "pre-rollout" => RolloutHookPoint.PreRollout,
        "rollout" => RolloutHookPoint.Rollout,
        "confirm-promotion" => RolloutHookPoint.PrePromotion,
        "post-rollout" => RolloutHookPoint.PostRollout,
        _ => RolloutHookPoint.Event,
    };

    public async ValueTask<RolloutHookResult> RunAsync(RolloutHookContext context, CancellationToken cancellationToken)
    {
        var s = context.Status;
        var notification = Notification(s.Phase);
        if (Point == RolloutHookPoint.Event && options.Events.Count > 0 && !options.Events.Contains(notification))
        {
            return RolloutHookResult.Allow($"not sent: '{notification}' is not among the webhook's events");
        }

        var metadata = new JsonObject();
        foreach (var (k, v) in options.Metadata)
        {
            metadata[k] = v;
        }

        var body = Encoding.UTF8.GetBytes(new JsonObject
        {
            ["name"] = options.Name,
            ["type"] = options.Type,
            ["event"] = Point == RolloutHookPoint.Event ? notification : options.Type,
            ["rollout_id"] = s.RolloutId,
            ["phase"] = s.Phase.ToString(),
            ["revision"] = s.Revision,
            ["strategy"] = s.Strategy,
            ["champion"] = s.Champion,
            ["candidate"] = s.Candidate,
            ["candidate_percent"] = s.CandidatePercent,
            ["promoted"] = s.Promoted,
            ["message"] = s.Message,
            ["idempotency_key"] = context.IdempotencyKey,
            ["sent_at"] = time.GetUtcNow().ToString("O", CultureInfo.InvariantCulture),
            ["metadata"] = metadata,
        }.ToJsonString());
        var signature = options.Secret is { Length: > 0 } secret ? "sha256=" + Convert.ToHexStringLower(HMACSHA256.HashData(Encoding.UTF8.GetBytes(secret), body)) : null;

        var attempts = options.Retries + 1;
        var last = "";
        for (var attempt = 1; attempt <= attempts; attempt++)
        {
            using var timeout = new CancellationTokenSource(options.Timeout, time);
            using var linked = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, timeout.Token);
            using var request = new HttpRequestMessage(HttpMethod.Post, options.Url) { Content = new ByteArrayContent(body) };
            request.Content.Headers.ContentType = new("application/json") { CharSet = "utf-8" };
            request.Headers.Add("X-Har-Idempotency-Key", context.IdempotencyKey);
            request.Headers.Add("X-Har-Delivery-Attempt", attempt.ToString(CultureInfo.InvariantCulture));
            if (signature is not null)
            {
                request.Headers.Add("X-Har-Signature", signature);
            }

            bool retry;
            try
            {
                using var response = await http.SendAsync(request, HttpCompletionOption.ResponseHeadersRead, linked.Token).ConfigureAwait(false);
                var code = (int)response.StatusCode;
                if (response.IsSuccessStatusCode)
                {
                    return RolloutHookResult.Allow($"HTTP {code} from {options.Url} (attempt {attempt} of {attempts})");
                }

                var text = await ReadSnippetAsync(response, linked.Token).ConfigureAwait(false);
                last = $"HTTP {code}{(text.Length > 0 ? ": " + text : string.Empty)}";
                retry = code >= 500 || response.StatusCode is HttpStatusCode.RequestTimeout or HttpStatusCode.TooManyRequests;
            }
            catch (OperationCanceledException) when (timeout.IsCancellationRequested && !cancellationToken.IsCancellationRequested)
            {
                last = $"no answer within {options.Timeout.TotalSeconds.ToString("0.###", CultureInfo.InvariantCulture)} s";
                retry = true;
            }
            catch (HttpRequestException ex)
            {
                last = $"request failed: {ex.Message}";
                retry = true;
            }

            if (!retry || attempt == attempts)
            {
                return RolloutHookResult.Deny($"{last} from {options.Url} (attempt {attempt} of {attempts})");
            }

            await Task.Delay(options.RetryBackoff * Math.Pow(2, attempt - 1), time, cancellationToken).ConfigureAwait(false);
        }

        return RolloutHookResult.Deny(last);
    }

    /// <summary>The notification name of a phase (what <see cref="WebhookOptions.Events"/> filters on).</summary>
    internal static string Notification(RolloutPhase phase) => phase switch
    {
        RolloutPhase.Pending => "start",
        RolloutPhase.Progressing => "progressing",
        RolloutPhase.Paused => "paused",
        RolloutPhase.AwaitingApproval => "awaiting-approval",
        RolloutPhase.Promoting => "promoting",
        RolloutPhase.Succeeded => "success",
        RolloutPhase.RollingBack => "rolling-back",
        RolloutPhase.RolledBack => "rollback",
        RolloutPhase.Aborted => "aborted",
        _ => "failed",
    };

    private static async Task<string> ReadSnippetAsync(HttpResponseMessage response, CancellationToken ct)
    {
        var buffer = new byte[200];
        await using var stream = await response.Content.ReadAsStreamAsync(ct).ConfigureAwait(false);
        var n = await stream.ReadAtLeastAsync(buffer, buffer.Length, throwOnEndOfStream: false, ct).ConfigureAwait(false);
        var text = Encoding.UTF8.GetString(buffer, 0, n).ReplaceLineEndings(" ").Trim();
        return n == buffer.Length ? text + "…" : text;
    }
}
