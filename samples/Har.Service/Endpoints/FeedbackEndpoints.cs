using System.Globalization;
using System.Text.Json;
using Har.Deployment;
using Har.Service.Endpoints.Schemas;
using Har.Service.Infrastructure;
using Har.Service.Security;

namespace Har.Service.Endpoints;

/// <summary>
/// <c>POST /v1/feedback</c>: the true activity of a stream over a frame or time range (a user confirms, a
/// diary, a labelled study), joined by the pipeline's <see cref="FeedbackStore"/> to the predictions every
/// version made on those windows. Needs an API key with the labeller or operator role: labels outrank the rollout's
/// agreement and class-mix guards, so only keys trusted with ground truth may send them (a predictor key, which apps
/// and devices hold, may not: a client that labels the candidate's answers as true could promote a broken candidate). Every label is validated
/// before any is applied: one bad label refuses the whole request with 400 and what was expected. Requests are
/// audited per key and interval (<c>http.feedback</c>, <see cref="Infrastructure.FeedbackAuditSummary"/>: how many requests,
/// labels, streams and labelled windows).
/// </summary>
internal static class FeedbackEndpoints
{
    /// <summary>The most labels one request may carry.</summary>
    public const int MaxLabelsPerRequest = 1000;

    /// <summary>The OpenAPI tag of the feedback routes.</summary>
    public const string Tag = "Feedback";

    private const string Expected = "{\"labels\": [{\"stream_id\": \"…\", \"activity\": \"WALKING\", \"start_frame\": 0, \"end_frame\": 500} or {…, \"from\": \"2026-01-15T10:30:00Z\", \"to\": \"2026-01-15T10:31:00Z\"}, …]}";

    private const string StreamExpected = "{\"labels\": [{\"activity\": \"WALKING\", \"start_frame\": 0, \"end_frame\": 500} or {\"activity\": …, \"from\": \"2026-01-15T10:30:00Z\", \"to\": \"2026-01-15T10:31:00Z\"}, …]}";

    public static void MapFeedbackEndpoints(this IEndpointRouteBuilder app)
    {
        app.MapPost("/v1/streams/{streamId}/feedback", (string streamId, HttpRequest request, ServingPipeline pipeline, CancellationToken ct) => ReportAsync(request, pipeline, streamId, ct))
            .RequireAuthorization(Roles.LabelPolicy)
            .WithName("reportStreamFeedback")
            .WithTags(Tag)
            .WithRequestBody(StreamExpected + " UTF-8, or the charset the Content-Type declares.", true, [typeof(StreamFeedbackRequest)], "application/json")
            .Produces<FeedbackResponse>(StatusCodes.Status200OK)
            .ProducesProblems(400, 413, 415)
            .WithSummary("Report the true activity of one stream (feedback labels), on the replica that holds its windows")
            .WithDescription("As POST /v1/feedback for the stream in the path (a label's stream_id may be left out; if given it must be the path's). In a fleet, a proxy that hashes the stream id out of /v1/streams/{id}/ sends this route where the stream's samples go, so the labels join at once.");
        app.MapPost("/v1/feedback", (HttpRequest request, ServingPipeline pipeline, CancellationToken ct) => ReportAsync(request, pipeline, null, ct))
            .RequireAuthorization(Roles.LabelPolicy)
            .WithName("reportFeedback")
            .WithTags(Tag)
            .WithRequestBody(Expected + " UTF-8, or the charset the Content-Type declares.", true, [typeof(FeedbackRequest)], "application/json")
            .Produces<FeedbackResponse>(StatusCodes.Status200OK)
            .ProducesProblems(400, 413, 415)
            .WithSummary("Report the true activity of streams (feedback labels)")
            .WithDescription("Labels over a stream's frame range (start_frame, end_frame) or a time range (from, to), 1 to 1,000 per request, joined to every version's predictions on the windows they cover; the rollout's accuracy gate compares candidate and champion on them. One bad label refuses the whole request (400, naming each bad label). Answers labels, labelled_windows and windows_per_label (0 for windows no longer held, never seen or already labelled). In a fleet the labels are also forwarded to the replica that holds each stream's windows.");
    }

    private static async Task<IResult> ReportAsync(HttpRequest request, ServingPipeline pipeline, string? streamId, CancellationToken ct)
    {
        var expected = streamId is null ? Expected : StreamExpected;
        if (streamId is not null && RequestBodies.ValidateStreamId(streamId, required: true) is { } badStream)
        {
            return Results.Problem(statusCode: 400, title: "Invalid stream id", detail: badStream.Detail);
        }

        // The media type and charset are checked as on every JSON route (found from outside: a prefix check took
        // application/jsonx and any charset, and refused application/problem+json).
        var (utf8, unsupported) = await ServiceJson.ReadUtf8Async(request, expected, ct);
        if (unsupported is not null)
        {
            return unsupported;
        }

        JsonDocument document;
        try
        {
            await using var body = new MemoryStream(utf8!, writable: false);
            document = await JsonDocument.ParseAsync(body, new JsonDocumentOptions { MaxDepth = 8, AllowDuplicateProperties = false }, ct);
        }
        catch (JsonException ex)
        {
            return Results.Problem(statusCode: 400, title: "Malformed JSON", detail: $"{ServiceJson.Describe(ex)}{ServiceJson.DecodedAs(request)} Expected {expected}.");
        }

        using (document)
        {
            var feedback = pipeline.Feedback;
            if (Parse(document.RootElement, feedback.Activities, streamId) is not { } labels)
            {
                return Results.Problem(statusCode: 400, title: "Invalid feedback", detail: Problems(document.RootElement, feedback.Activities, streamId));
            }

            var windows = new int[labels.Count];
            for (var i = 0; i < labels.Count; i++)
            {
                var l = labels[i];
                windows[i] = l.From is { } from ? feedback.Report(l.StreamId, l.Activity, from, l.To!.Value) : feedback.Report(l.StreamId, l.Activity, l.StartFrame!.Value, l.EndFrame!.Value);
            }

            // Labels steer the rollout's accuracy gate: who sent how many, and how many windows they labelled, is audited
            // (summed per key and interval into one http.feedback entry by FeedbackAuditSummary; numbers only).
            var labelled = windows.Sum();
            Infrastructure.OperationAuditMiddleware.AddDetail(request.HttpContext, "labels", labels.Count);
            Infrastructure.OperationAuditMiddleware.AddDetail(request.HttpContext, "labelled_windows", labelled);
            Infrastructure.OperationAuditMiddleware.AddDetail(request.HttpContext, "streams", labels.Select(l => l.StreamId).Distinct(StringComparer.Ordinal).Count());
            return Results.Ok(new { labels = labels.Count, labelled_windows = labelled, windows_per_label = windows });
        }
    }

    private static List<Label>? Parse(JsonElement root, IReadOnlyList<string> activities, string? streamId)
    {
        var labels = new List<Label>();
        foreach (var (label, problem) in Read(root, activities, streamId))
        {
            if (problem is not null)
            {
                return null;
            }

            labels.Add(label!);
        }

        return labels;
    }

    private static string Problems(JsonElement root, IReadOnlyList<string> activities, string? streamId)
    {
        var problems = Read(root, activities, streamId).Where(x => x.Problem is not null).Select(x => x.Problem!).Take(10).ToList();
        return string.Join(" ", problems);
    }

    private static IEnumerable<(Label? Label, string? Problem)> Read(JsonElement root, IReadOnlyList<string> activities, string? streamId)
    {
        if (root.ValueKind != JsonValueKind.Object || !root.TryGetProperty("labels", out var array) || array.ValueKind != JsonValueKind.Array)
        {
            yield return (null, $"The body must be an object with a \"labels\" array: {(streamId is null ? Expected : StreamExpected)}.");
            yield break;
        }

        if (UnknownMember(root, TopMembers) is { } unknownTop)
        {
            yield return (null, unknownTop);
            yield break;
        }

        var count = array.GetArrayLength();
        if (count == 0 || count > MaxLabelsPerRequest)
        {
            yield return (null, $"\"labels\" holds {count} labels; expected 1 to {MaxLabelsPerRequest} per request.");
            yield break;
        }

        var index = 0;
        foreach (var item in array.EnumerateArray())
        {
            yield return ReadOne(item, index++, activities, streamId);
        }
    }

    private static readonly string[] TopMembers = ["labels"];

    private static readonly string[] LabelMembers = ["stream_id", "activity", "start_frame", "end_frame", "from", "to"];

    /// <summary>
    /// A member the body does not define, or one of its members in another case ("ACTIVITY" beside "activity" is read
    /// as neither, so a label could say one thing to a gateway and another here): refused, as the prediction bodies do.
    /// </summary>
    private static string? UnknownMember(JsonElement element, string[] members)
    {
        foreach (var property in element.EnumerateObject())
        {
            if (Array.IndexOf(members, property.Name) >= 0)
            {
                continue;
            }

            var shown = ClientText.Shown(property.Name, 64);
            return members.FirstOrDefault(m => string.Equals(m, property.Name, StringComparison.OrdinalIgnoreCase)) is { } meant
                ? $"'{shown}' is written in another case than '{meant}' (member names are exact here); write '{meant}', once."
                : $"'{shown}' is not a member of this body; remove it. Expected {string.Join(", ", members)}.";
        }

        return null;
    }

    private static (Label? Label, string? Problem) ReadOne(JsonElement item, int index, IReadOnlyList<string> activities, string? routeStream)
    {
        string Where(string what) => string.Create(CultureInfo.InvariantCulture, $"labels[{index}]: {what}");
        if (item.ValueKind != JsonValueKind.Object)
        {
            return (null, Where($"expected an object, got {item.ValueKind}."));
        }

        if (UnknownMember(item, LabelMembers) is { } unknown)
        {
            return (null, Where(unknown));
        }

        var hasStream = item.TryGetProperty("stream_id", out var s);
        var streamId = hasStream && s.ValueKind == JsonValueKind.String ? s.GetString() : null;
        if (routeStream is not null)
        {
            if (hasStream && streamId != routeStream)
            {
                return (null, Where($"stream_id must be the path's stream '{routeStream}' or left out; labels of other streams go to their own path."));
            }

            streamId = routeStream;
        }
        else if (RequestBodies.ValidateStreamId(streamId, required: true) is { } invalid)
        {
            return (null, Where(invalid.Detail));
        }

        var activity = item.TryGetProperty("activity", out var a) && a.ValueKind == JsonValueKind.String ? a.GetString() : null;
        var known = activity is null ? null : activities.FirstOrDefault(x => string.Equals(x, activity, StringComparison.OrdinalIgnoreCase));
        if (known is null)
        {
            return (null, Where($"activity {(activity is null ? "is missing" : $"'{activity}' is unknown")}; expected one of {string.Join(", ", activities)}."));
        }

        var hasFrames = item.TryGetProperty("start_frame", out var sf) | item.TryGetProperty("end_frame", out var ef);
        var hasTimes = item.TryGetProperty("from", out var f) | item.TryGetProperty("to", out var t);
        if (hasFrames == hasTimes)
        {
            return (null, Where("give either a frame range (start_frame, end_frame) or a time range (from, to), not both or neither."));
        }

        if (hasFrames)
        {
            if (sf.ValueKind != JsonValueKind.Number || !sf.TryGetInt64(out var start) || ef.ValueKind != JsonValueKind.Number || !ef.TryGetInt64(out var end))
            {
                return (null, Where("start_frame and end_frame must both be whole numbers (stream-relative frame indexes, end exclusive)."));
            }

            return start < 0 || end <= start
                ? (null, Where(string.Create(CultureInfo.InvariantCulture, $"frame range [{start}, {end}) is empty, inverted or negative; expected 0 ≤ start_frame < end_frame.")))
                : (new Label(streamId!, known, start, end, null, null), null);
        }

        var badFrom = Time(f, "from", out var from);
        var badTo = Time(t, "to", out var to);
        if ((badFrom ?? badTo) is { } badTime)
        {
            return (null, Where(badTime));
        }

        return to <= from
            ? (null, Where(string.Create(CultureInfo.InvariantCulture, $"time range [{from:O}, {to:O}] is empty or inverted; expected from < to.")))
            : (new Label(streamId!, known, null, null, from, to), null);
    }

    /// <summary>
    /// An ISO 8601 time with its UTC offset (<c>Z</c> or <c>+01:00</c>), or what is wrong with it: a time without an
    /// offset would be read in the server's time zone, so the same label would mean another instant on another replica.
    /// </summary>
    private static string? Time(JsonElement value, string name, out DateTimeOffset time)
    {
        time = default;
        if (value.ValueKind != JsonValueKind.String || !value.TryGetDateTimeOffset(out time))
        {
            return $"from and to must both be ISO 8601 times with a UTC offset, e.g. 2026-01-15T10:30:00Z or 2026-01-15T11:30:00+01:00; {name} is {(value.ValueKind == JsonValueKind.String ? "not one" : value.ValueKind == JsonValueKind.Undefined ? "missing" : "a " + value.ValueKind.ToString().ToLowerInvariant())}.";
        }

        // DateTimeKind.Unspecified: the text has no 'Z' and no ±hh:mm.
        return value.TryGetDateTime(out var parsed) && parsed.Kind != DateTimeKind.Unspecified
            ? null
            : $"{name} '{value.GetString()}' has no UTC offset; add Z or an offset such as +01:00 (e.g. 2026-01-15T10:30:00Z): a time without one would be read in the server's time zone.";
    }

    private sealed record Label(string StreamId, string Activity, long? StartFrame, long? EndFrame, DateTimeOffset? From, DateTimeOffset? To);
}
