using System.Globalization;
using System.Text.Json;
using Har.Audit;
using Har.Service.Endpoints.Schemas;
using Har.Service.Infrastructure;
using Har.Service.Security;

namespace Har.Service.Endpoints;

/// <summary>
/// <c>GET /v1/rollouts</c>: every rollout this registry has run, newest first, with its outcome. The controller keeps
/// only the current rollout; the history is the audit log's: each rollout's <c>rollout.transition</c> events (start:
/// champion, candidate, strategy, who; then every phase change with its message) and its <c>rollout.rollback</c>
/// event (trigger, reason, whether it came after promotion). What the log holds is what is shown: a rollout's latest
/// transitions appear once the controller has appended them (they wait in its outbox while the log cannot write).
/// </summary>
internal static class RolloutHistoryEndpoints
{
    private const string TransitionEvent = "rollout.transition";
    private const string RollbackEvent = "rollout.rollback";
    private static readonly string[] Outcomes = ["succeeded", "rolled_back", "aborted", "failed", "in_progress"];

    public static void MapRolloutHistoryEndpoints(this IEndpointRouteBuilder app)
    {
        app.MapGet("/v1/rollouts", List)
            .RequireAuthorization(Roles.PredictPolicy)
            .AddEndpointFilter<ActorNames>()
            .WithName("listRollouts")
            .WithTags("Rollouts")
            .WithSummary("Rollout history with outcomes")
            .WithDescription("Newest first, from the audit log. Filters: outcome (succeeded, rolled_back, aborted, failed, in_progress), candidate (a version). Pages of page_size; next_page is the cursor of the next (older) page.")
            .WithPagedQuery(
                new QueryParameter("outcome", "Only rollouts with this outcome.", Outcomes),
                new QueryParameter("candidate", "Only rollouts of this candidate version."))
            .Produces<RolloutHistoryResponse>(StatusCodes.Status200OK)
            .ProducesProblems(400, 503);
    }

    private static Task<IResult> List(HttpRequest request, IServiceProvider services, string? outcome, string? candidate, string? page, string? page_size)
    {
        var (query, error) = ListQuery.Parse(request, "outcome", "candidate");
        if (error is not null)
        {
            return Task.FromResult(error);
        }

        var (outcomeFilter, e1) = query!.OneOf("outcome", Outcomes);
        var (candidateFilter, e2) = query.Text("candidate");
        if ((e1 ?? e2) is { } bad)
        {
            return Task.FromResult(bad);
        }

        var before = long.MaxValue;
        if (query.Page is { } token && (!long.TryParse(token, NumberStyles.None, CultureInfo.InvariantCulture, out before) || before < 0))
        {
            return Task.FromResult(ListQuery.Bad("page is not a cursor this endpoint issued; pass the previous response's next_page, or leave it out for the first page."));
        }

        return AuditEndpoints.WithLog(services, log =>
        {
            var rollouts = Read(log)
                .Where(r => r.StartIndex < before)
                .Where(r => outcomeFilter is null || r.Outcome == outcomeFilter)
                .Where(r => candidateFilter is null || r.Candidate == candidateFilter)
                .OrderByDescending(r => r.StartIndex)
                .Take(query.PageSize + 1)
                .ToList();
            var more = rollouts.Count > query.PageSize;
            if (more)
            {
                rollouts.RemoveAt(rollouts.Count - 1);
            }

            return Task.FromResult(Results.Ok(new
            {
                rollouts = rollouts.Select(ToJson).ToArray(),
                next_page = more ? rollouts[^1].StartIndex.ToString(CultureInfo.InvariantCulture) : null,
            }));
        });
    }

    private static readonly Lock HistoryLock = new();
    private static History? _history;

    /// <summary>
    /// Every rollout in the log. Read once through the log's index (its transition and rollback events, 1000 at a time),
    /// then kept and brought up to date with the entries appended since: found from outside, rebuilding the whole history
    /// on every call took 120 ms with 10,000 transitions, and 16 concurrent callers (anonymous by default) raised every
    /// other client's median latency from 2 to 644 ms.
    /// </summary>
    private static RolloutHistory[] Read(AuditLog log)
    {
        lock (HistoryLock)
        {
            return [.. Current(log).ById.Values.Select(r => r.Clone())];
        }
    }

    /// <summary>Whether the log holds a rollout with this id (its history, brought up to date; no scan of the log).</summary>
    internal static bool Exists(AuditLog log, string rolloutId)
    {
        lock (HistoryLock)
        {
            return Current(log).ById.ContainsKey(rolloutId);
        }
    }

    /// <summary>The history of the whole log, read once and then brought up to date with the entries appended since (under <see cref="HistoryLock"/>).</summary>
    private static History Current(AuditLog log)
    {
        var count = log.Count;
        if (_history is not { } h || !ReferenceEquals(h.Log, log) || h.Count > count)
        {
            _history = h = new History(log, count);
            Build(h.ById, log, 0, count);
        }
        else if (count > h.Count)
        {
            // Through the index too: found from outside, reading and parsing every entry appended since the last call took
            // 2.1 s after 206,000 feedback and operator entries, under this lock, on a route anyone may call.
            Build(h.ById, log, h.Count, count);
            h.Count = count;
        }

        return h;
    }

    /// <summary>
    /// Applies the rollouts' transitions, then their rollbacks, among entries <paramref name="from"/> to
    /// <paramref name="count"/> (exclusive), read through the log's index (entries of other types are not read).
    /// </summary>
    private static void Build(Dictionary<string, RolloutHistory> byId, AuditLog log, long from, long count)
    {
        foreach (var entry in Events(log, TransitionEvent, from).TakeWhile(e => e.Index < count))
        {
            Apply(byId, entry);
        }

        foreach (var entry in Events(log, RollbackEvent, from).TakeWhile(e => e.Index < count))
        {
            Apply(byId, entry);
        }
    }

    /// <summary>Applies one entry: a rollout's transition or rollback event (anything else is ignored).</summary>
    private static void Apply(Dictionary<string, RolloutHistory> byId, AuditEntry entry)
    {
        if (entry.Kind != AuditRecordKind.Event || entry.EntityType != "rollout")
        {
            return;
        }

        var details = ((AuditEvent)entry.Record).ActionDetails;
        if (entry.EventType == RollbackEvent)
        {
            if (byId.TryGetValue(entry.EntityId, out var rolledBack))
            {
                rolledBack.Rollback = new
                {
                    at = entry.Timestamp,
                    actor = entry.Actor,
                    trigger = Text(details, "trigger"),
                    reason = Text(details, "reason"),
                    after_promotion = details.TryGetProperty("after_promotion", out var p) && p.ValueKind == JsonValueKind.True,
                    audit_index = entry.Index,
                };
            }

            return;
        }

        if (entry.EventType != TransitionEvent)
        {
            return;
        }

        if (!byId.TryGetValue(entry.EntityId, out var r))
        {
            byId[entry.EntityId] = r = new RolloutHistory(entry.EntityId, entry.Index, entry.Timestamp, entry.Actor);
        }

        if (Text(details, "from") is null && Text(details, "candidate") is { } started)
        {
            r.Candidate = started;
            r.Champion = Text(details, "champion");
            r.Strategy = Text(details, "strategy");
            r.StartedBy = entry.Actor;
            r.StartedAt = entry.Timestamp;
        }

        // The controller's outbox numbers a rollout's records; a record appended twice (a fleet leader that resumed after
        // a pause appended a transition its successor had already written, after the rollout had ended) or out of order
        // says nothing newer than the highest number seen. Found from outside: a rolled-back rollout listed as Promoting,
        // in progress for good, by a duplicate appended after its end.
        if (details.TryGetProperty("sequence", out var number) && number.TryGetInt64(out var sequence))
        {
            if (sequence <= r.Sequence)
            {
                return;
            }

            r.Sequence = sequence;
        }

        r.Phase = Text(details, "to") ?? r.Phase;
        r.Message = Text(details, "message") ?? r.Message;
        r.UpdatedAt = entry.Timestamp;
        r.LastIndex = entry.Index;
        r.Transitions++;
    }

    /// <summary>The history read so far from one log: the rollouts of its first <see cref="Count"/> entries.</summary>
    private sealed class History(AuditLog log, long count)
    {
        public AuditLog Log { get; } = log;

        public long Count { get; set; } = count;

        public Dictionary<string, RolloutHistory> ById { get; } = new(StringComparer.Ordinal);
    }

    private static IEnumerable<AuditEntry> Events(AuditLog log, string eventType, long from = 0)
    {
        // Page tokens are index cursors (AuditPage.NextPageToken): the first page starts at the entry numbered from.
        var token = from > 0 ? from.ToString(CultureInfo.InvariantCulture) : null;
        do
        {
            var page = log.Query(new AuditQuery { EventType = eventType, EntityType = "rollout", Kind = AuditRecordKind.Event, PageSize = 1000, PageToken = token });
            foreach (var entry in page.Entries)
            {
                yield return entry;
            }

            token = page.NextPageToken;
        }
        while (token is not null);
    }

    private static string? Text(JsonElement details, string name) =>
        details.ValueKind == JsonValueKind.Object && details.TryGetProperty(name, out var value) && value.ValueKind == JsonValueKind.String ? value.GetString() : null;

    private static object ToJson(RolloutHistory r) => new
    {
        rollout_id = r.Id,
        strategy = r.Strategy,
        champion = r.Champion,
        candidate = r.Candidate,
        started_by = r.StartedBy,
        started_at = r.StartedAt,
        phase = r.Phase,
        outcome = r.Outcome,
        ended_at = r.Outcome == "in_progress" ? (DateTimeOffset?)null : r.UpdatedAt,
        duration_seconds = r.Outcome == "in_progress" ? (double?)null : Math.Round((r.UpdatedAt - r.StartedAt).TotalSeconds, 3),
        updated_at = r.UpdatedAt,
        message = r.Message,
        transitions = r.Transitions,
        rollback = r.Rollback,
        audit = new { first_index = r.StartIndex, last_index = r.LastIndex },
    };

    private sealed class RolloutHistory(string id, long startIndex, DateTimeOffset at, string actor)
    {
        public string Id { get; } = id;

        public long StartIndex { get; } = startIndex;

        public long LastIndex { get; set; } = startIndex;

        public string? Strategy { get; set; }

        public string? Champion { get; set; }

        public string? Candidate { get; set; }

        public string StartedBy { get; set; } = actor;

        public DateTimeOffset StartedAt { get; set; } = at;

        public DateTimeOffset UpdatedAt { get; set; } = at;

        public string Phase { get; set; } = "Pending";

        /// <summary>The highest outbox sequence number of the rollout's transitions read so far (-1: none).</summary>
        public long Sequence { get; set; } = -1;

        public string? Message { get; set; }

        public int Transitions { get; set; }

        public object? Rollback { get; set; }

        /// <summary>A copy for one response: the kept history goes on changing as entries are appended.</summary>
        public RolloutHistory Clone() => (RolloutHistory)MemberwiseClone();

        public string Outcome => Phase switch
        {
            "Succeeded" => "succeeded",
            "RolledBack" => "rolled_back",
            "Aborted" => "aborted",
            "Failed" => "failed",
            _ => "in_progress",
        };
    }
}
