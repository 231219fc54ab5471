using System.ComponentModel.DataAnnotations;
using System.Text.Json.Nodes;
using System.Text.Json.Serialization;
using Har.Audit;
using Har.Deployment;
using Har.Drift;

#pragma warning disable CA1812 // Schema-only types: the OpenAPI document describes with them what the handlers write (anonymous types, JsonObject, Utf8JsonWriter) or read.

namespace Har.Service.Endpoints.Schemas;

// The bodies of the API as the OpenAPI document describes them (GET /openapi/v1.json). The handlers read their bodies
// themselves and write most answers as anonymous types, so these types are used for the document only: each mirrors,
// member for member, what its handler reads or writes (snake_case names, enums as names, null where null is written).
// tests/Har.Service.Tests/Endpoints/OpenApiConformanceTests.cs validates the live answers against the document.
// Strings that hold a name of an enum carry [EnumDataType] or [AllowedValues]; ServiceOpenApi turns those into the
// schema's enum. Request bodies refuse unknown members (additionalProperties: false), as the service does.

/// <summary>The predictions of whole windows, in the order of the windows sent.</summary>
internal sealed record PredictionsResponse
{
    /// <summary>One prediction per window sent.</summary>
    [JsonPropertyName("predictions")]
    public required IReadOnlyList<PredictionResponse> Predictions { get; init; }
}

/// <summary>The predictions of the windows one append of frames completed (possibly none).</summary>
internal sealed record StreamPredictionsResponse
{
    /// <summary>The stream (the path's id).</summary>
    [JsonPropertyName("stream_id")]
    public required string StreamId { get; init; }

    /// <summary>How many frames the append held.</summary>
    [JsonPropertyName("frames")]
    public required int Frames { get; init; }

    /// <summary>The windows the append completed, each with its start_frame in the stream.</summary>
    [JsonPropertyName("predictions")]
    public required IReadOnlyList<PredictionResponse> Predictions { get; init; }
}

/// <summary>The prediction of one window.</summary>
internal sealed record PredictionResponse
{
    /// <summary>The window's first frame in the stream (stream appends), or null (whole windows sent to /v1/predict).</summary>
    [JsonPropertyName("start_frame")]
    public required long? StartFrame { get; init; }

    /// <summary>The predicted activity (one of the model card's labels).</summary>
    [JsonPropertyName("label")]
    public required string Label { get; init; }

    /// <summary>The index of the label among the model's classes.</summary>
    [JsonPropertyName("class_index")]
    public required int ClassIndex { get; init; }

    /// <summary>The probability of the predicted label.</summary>
    [JsonPropertyName("confidence")]
    public required float Confidence { get; init; }

    /// <summary>The entropy of the class probabilities.</summary>
    [JsonPropertyName("entropy")]
    public required float Entropy { get; init; }

    /// <summary>Whether the confidence is below the model's threshold.</summary>
    [JsonPropertyName("uncertain")]
    public required bool Uncertain { get; init; }

    /// <summary>The version that made the prediction (the champion, or a rollout's candidate).</summary>
    [JsonPropertyName("model_version")]
    public required string ModelVersion { get; init; }

    /// <summary>The probability of every class, in the model card's label order.</summary>
    [JsonPropertyName("probabilities")]
    public required IReadOnlyList<float> Probabilities { get; init; }
}

/// <summary>Whole windows of the current model (POST /v1/predict, application/json).</summary>
[JsonUnmappedMemberHandling(JsonUnmappedMemberHandling.Disallow)]
internal sealed record PredictRequest
{
    /// <summary>Optional: windows that name a stream are routed (and judged by a rollout and the drift monitor) as that stream's; it counts against the client's stream quota.</summary>
    [JsonPropertyName("stream_id")]
    [StringLength(RequestBodies.MaxStreamIdLength, MinimumLength = 1)]
    public string? StreamId { get; init; }

    /// <summary>The windows (at least one; at most Har:Service:MaxWindowsPerRequest, more is 413), each the window's frames with their channels interleaved (ax, ay, az, gx, gy, gz per frame, in the model card's order and units): window_length × channels finite numbers (with Har:Service:ContextFrames, that many frames of context first).</summary>
    [JsonPropertyName("windows")]
    [MinLength(1)]
    public required IReadOnlyList<IReadOnlyList<float>> Windows { get; init; }
}

/// <summary>Raw frames of one stream (POST /v1/streams/{streamId}/samples, application/json).</summary>
[JsonUnmappedMemberHandling(JsonUnmappedMemberHandling.Disallow)]
internal sealed record SamplesRequest
{
    /// <summary>Frames with their channels interleaved (ax, ay, az, gx, gy, gz, ax, …): a positive whole number of frames of finite numbers.</summary>
    [JsonPropertyName("samples")]
    [MinLength(1)]
    public required IReadOnlyList<float> Samples { get; init; }
}

/// <summary>Feedback labels of any streams (POST /v1/feedback).</summary>
[JsonUnmappedMemberHandling(JsonUnmappedMemberHandling.Disallow)]
internal sealed record FeedbackRequest
{
    /// <summary>1 to 1,000 labels; one bad label refuses the whole request.</summary>
    [JsonPropertyName("labels")]
    [Length(1, FeedbackEndpoints.MaxLabelsPerRequest)]
    public required IReadOnlyList<FeedbackLabel> Labels { get; init; }
}

/// <summary>The true activity of a stream over a frame range (start_frame, end_frame) or a time range (from, to): one of the two.</summary>
[RequiredAlternatives(Exclusive = true, Groups = new[] { "start_frame,end_frame", "from,to" })]
[JsonUnmappedMemberHandling(JsonUnmappedMemberHandling.Disallow)]
internal sealed record FeedbackLabel
{
    /// <summary>The stream the label is about.</summary>
    [JsonPropertyName("stream_id")]
    [StringLength(RequestBodies.MaxStreamIdLength, MinimumLength = 1)]
    public required string StreamId { get; init; }

    /// <summary>One of the serving model's labels (any case), or an activity a version that predicted since adds.</summary>
    [JsonPropertyName("activity")]
    public required string Activity { get; init; }

    /// <summary>The first frame of the range (the stream's own frame index, from 0).</summary>
    [JsonPropertyName("start_frame")]
    public long StartFrame { get; init; }

    /// <summary>The end of the range (exclusive), above start_frame.</summary>
    [JsonPropertyName("end_frame")]
    public long EndFrame { get; init; }

    /// <summary>The start of the time range: ISO 8601 with a UTC offset (Z or ±hh:mm).</summary>
    [JsonPropertyName("from")]
    public DateTimeOffset From { get; init; }

    /// <summary>The end of the time range, after from: ISO 8601 with a UTC offset.</summary>
    [JsonPropertyName("to")]
    public DateTimeOffset To { get; init; }
}

/// <summary>Feedback labels of the stream in the path (POST /v1/streams/{streamId}/feedback).</summary>
[JsonUnmappedMemberHandling(JsonUnmappedMemberHandling.Disallow)]
internal sealed record StreamFeedbackRequest
{
    /// <summary>1 to 1,000 labels; one bad label refuses the whole request.</summary>
    [JsonPropertyName("labels")]
    [Length(1, FeedbackEndpoints.MaxLabelsPerRequest)]
    public required IReadOnlyList<StreamFeedbackLabel> Labels { get; init; }
}

/// <summary>A label of the path's stream: a frame range (start_frame, end_frame) or a time range (from, to).</summary>
[RequiredAlternatives(Exclusive = true, Groups = new[] { "start_frame,end_frame", "from,to" })]
[JsonUnmappedMemberHandling(JsonUnmappedMemberHandling.Disallow)]
internal sealed record StreamFeedbackLabel
{
    /// <summary>Optional: if given, the path's stream id.</summary>
    [JsonPropertyName("stream_id")]
    public string StreamId { get; init; } = string.Empty;

    /// <summary>One of the serving model's labels (any case), or an activity a version that predicted since adds.</summary>
    [JsonPropertyName("activity")]
    public required string Activity { get; init; }

    /// <summary>The first frame of the range (the stream's own frame index, from 0).</summary>
    [JsonPropertyName("start_frame")]
    public long StartFrame { get; init; }

    /// <summary>The end of the range (exclusive), above start_frame.</summary>
    [JsonPropertyName("end_frame")]
    public long EndFrame { get; init; }

    /// <summary>The start of the time range: ISO 8601 with a UTC offset (Z or ±hh:mm).</summary>
    [JsonPropertyName("from")]
    public DateTimeOffset From { get; init; }

    /// <summary>The end of the time range, after from: ISO 8601 with a UTC offset.</summary>
    [JsonPropertyName("to")]
    public DateTimeOffset To { get; init; }
}

/// <summary>What the labels labelled.</summary>
internal sealed record FeedbackResponse
{
    /// <summary>How many labels the request held.</summary>
    [JsonPropertyName("labels")]
    public required int Labels { get; init; }

    /// <summary>How many windows they labelled on this replica.</summary>
    [JsonPropertyName("labelled_windows")]
    public required int LabelledWindows { get; init; }

    /// <summary>Per label, in request order: the windows it labelled (0 for windows no longer held, never seen or already labelled).</summary>
    [JsonPropertyName("windows_per_label")]
    public required IReadOnlyList<int> WindowsPerLabel { get; init; }
}

/// <summary>A registered model version.</summary>
internal sealed record ModelVersionResponse
{
    /// <summary>The semantic version.</summary>
    [JsonPropertyName("version")]
    public required string Version { get; init; }

    /// <summary>The model's name from its card.</summary>
    [JsonPropertyName("name")]
    public required string Name { get; init; }

    /// <summary>The lowercase hex SHA-256 of the model file as registered.</summary>
    [JsonPropertyName("sha256")]
    public required string Sha256 { get; init; }

    /// <summary>The trainable parameter count from the card.</summary>
    [JsonPropertyName("parameters")]
    public required long Parameters { get; init; }

    /// <summary>When the version was registered.</summary>
    [JsonPropertyName("registered_at")]
    public required DateTimeOffset RegisteredAt { get; init; }

    /// <summary>The id of the version's deployment record.</summary>
    [JsonPropertyName("deployment_id")]
    public required string DeploymentId { get; init; }

    /// <summary>The retirement in force (no rollout of the version, no rollback to it), or null.</summary>
    [JsonPropertyName("retired")]
    public required ModelRetirementResponse? Retired { get; init; }
}

/// <summary>A version's retirement, as its registry.retired audit entry records it.</summary>
internal sealed record ModelRetirementResponse
{
    /// <summary>Why, as the operator gave it.</summary>
    [JsonPropertyName("reason")]
    public required string Reason { get; init; }

    /// <summary>The operator's key name.</summary>
    [JsonPropertyName("by")]
    public required string By { get; init; }

    /// <summary>When it was retired.</summary>
    [JsonPropertyName("at")]
    public required DateTimeOffset At { get; init; }

    /// <summary>The index of its registry.retired entry in the audit log (GET /v1/audit/events/{index}).</summary>
    [JsonPropertyName("audit_index")]
    public required long AuditIndex { get; init; }
}

/// <summary>Why a version is retired or reinstated.</summary>
internal sealed record ModelDecisionRequest
{
    /// <summary>Why (recorded in the audit log; not blank).</summary>
    [JsonPropertyName("reason")]
    [MinLength(1)]
    [MaxLength(2048)]
    [RegularExpression(@"\S")]
    public required string Reason { get; init; }
}

/// <summary>A page of registered versions, in version order.</summary>
internal sealed record ModelListResponse
{
    /// <summary>The version serving all traffic, or null before the first registration.</summary>
    [JsonPropertyName("current")]
    public required string? Current { get; init; }

    /// <summary>The page's versions.</summary>
    [JsonPropertyName("versions")]
    public required IReadOnlyList<ModelVersionResponse> Versions { get; init; }

    /// <summary>The cursor of the next page (pass it as page), or null on the last page.</summary>
    [JsonPropertyName("next_page")]
    public required string? NextPage { get; init; }
}

/// <summary>One version with its card, its verification and its completed deployment record.</summary>
internal sealed record ModelDetailResponse
{
    /// <summary>The version as listed.</summary>
    [JsonPropertyName("model")]
    public required ModelVersionResponse Model { get; init; }

    /// <summary>Whether it is the version serving all traffic.</summary>
    [JsonPropertyName("current")]
    public required bool Current { get; init; }

    /// <summary>Whether its files matched what the audit log registered at the latest verification.</summary>
    [JsonPropertyName("verified")]
    public required bool Verified { get; init; }

    /// <summary>When it was last verified.</summary>
    [JsonPropertyName("verified_at")]
    public required DateTimeOffset VerifiedAt { get; init; }

    /// <summary>What the verification found wrong (empty when verified).</summary>
    [JsonPropertyName("problems")]
    public required IReadOnlyList<string> Problems { get; init; }

    /// <summary>The deployment record as completed at promotion (the latest deployment.completed audit event of the version), or null before any promotion.</summary>
    [JsonPropertyName("deployment")]
    public required CompletedDeploymentResponse? Deployment { get; init; }

    /// <summary>The model card: the ONNX metadata recorded at registration (the version's config.json), each value a string as in the model (lists and objects JSON-encoded): har.labels, har.channels, har.window_length, har.stride, har.sample_rate_hz, har.metrics …; null if the registry holds none for the version.</summary>
    [JsonPropertyName("card")]
    public required IReadOnlyDictionary<string, string>? Card { get; init; }
}

/// <summary>A version's completed deployment record.</summary>
internal sealed record CompletedDeploymentResponse
{
    /// <summary>The index of the deployment.completed audit entry.</summary>
    [JsonPropertyName("audit_index")]
    public required long AuditIndex { get; init; }

    /// <summary>The event's details: deployment_id, version, completes, rollout_id, strategy, started_by, promoted_by, approved_by, passed_smoke_test, replicas, promoted_at, record.</summary>
    [JsonPropertyName("details")]
    public required JsonObject Details { get; init; }
}

/// <summary>Start a rollout of a registered version (POST /v1/rollouts).</summary>
[JsonUnmappedMemberHandling(JsonUnmappedMemberHandling.Disallow)]
internal sealed record RolloutStartRequest
{
    /// <summary>The registered version to roll out (not blank).</summary>
    [JsonPropertyName("candidate")]
    [MinLength(1)]
    [RegularExpression(@"\S")]
    public required string Candidate { get; init; }

    /// <summary>The strategy; canary when left out.</summary>
    [JsonPropertyName("strategy")]
    [AllowedValues("recreate", "blue-green", "canary", "shadow")]
    public string? Strategy { get; init; }

    /// <summary>Why (recorded in the audit log).</summary>
    [JsonPropertyName("reason")]
    [MaxLength(RolloutTexts.MaxLength)]
    public string? Reason { get; init; }
}

/// <summary>A rollout command's optional body (POST /v1/rollouts/current/{action} for approve, promote, pause, resume, abort).</summary>
[JsonUnmappedMemberHandling(JsonUnmappedMemberHandling.Disallow)]
internal sealed record RolloutCommandRequest
{
    /// <summary>Why (recorded in the audit log).</summary>
    [JsonPropertyName("reason")]
    [MaxLength(RolloutTexts.MaxLength)]
    public string? Reason { get; init; }

    /// <summary>The phase the sender believes the rollout is in, by name (any case): 409 when it is in another.</summary>
    [JsonPropertyName("expected_phase")]
    [EnumDataType(typeof(RolloutPhase))]
    public string? ExpectedPhase { get; init; }

    /// <summary>The revision the sender believes the rollout is at: 409 when it is at another.</summary>
    [JsonPropertyName("expected_revision")]
    public long? ExpectedRevision { get; init; }
}

/// <summary>A rollback's optional body (POST /v1/rollouts/rollback and POST /v1/rollouts/current/rollback): every member is optional.</summary>
[JsonUnmappedMemberHandling(JsonUnmappedMemberHandling.Disallow)]
internal sealed record RollbackRequest
{
    /// <summary>The version to restore: the rollout's champion by default, or an earlier registered version (below the candidate) that verifies against the audit log.</summary>
    [JsonPropertyName("to")]
    public string? To { get; init; }

    /// <summary>Why (recorded in the audit log).</summary>
    [JsonPropertyName("reason")]
    [MaxLength(RolloutTexts.MaxLength)]
    public string? Reason { get; init; }

    /// <summary>The incident report's summary (what happened).</summary>
    [JsonPropertyName("summary")]
    [MaxLength(RolloutTexts.MaxLength)]
    public string? Summary { get; init; }

    /// <summary>The incident report's cause as the operator found it.</summary>
    [JsonPropertyName("cause")]
    [MaxLength(RolloutTexts.MaxLength)]
    public string? Cause { get; init; }

    /// <summary>The incident report's actions taken or to take.</summary>
    [JsonPropertyName("actions")]
    [MaxLength(RolloutTexts.MaxLength)]
    public string? Actions { get; init; }

    /// <summary>The phase the sender believes the rollout is in, by name (any case): 409 when it is in another.</summary>
    [JsonPropertyName("expected_phase")]
    [EnumDataType(typeof(RolloutPhase))]
    public string? ExpectedPhase { get; init; }

    /// <summary>The revision the sender believes the rollout is at: 409 when it is at another.</summary>
    [JsonPropertyName("expected_revision")]
    public long? ExpectedRevision { get; init; }
}

/// <summary>Completes an incident report (PUT /v1/incidents/{id}): at least one of summary, cause, actions.</summary>
[RequiredAlternatives(Groups = new[] { "summary", "cause", "actions" })]
[JsonUnmappedMemberHandling(JsonUnmappedMemberHandling.Disallow)]
internal sealed record IncidentUpdateRequest
{
    /// <summary>What happened.</summary>
    [JsonPropertyName("summary")]
    [MaxLength(RolloutTexts.MaxLength)]
    public string? Summary { get; init; }

    /// <summary>The cause as the operator found it.</summary>
    [JsonPropertyName("cause")]
    [MaxLength(RolloutTexts.MaxLength)]
    public string? Cause { get; init; }

    /// <summary>Actions taken or to take.</summary>
    [JsonPropertyName("actions")]
    [MaxLength(RolloutTexts.MaxLength)]
    public string? Actions { get; init; }

    /// <summary>Why the report is updated (recorded in the audit log).</summary>
    [JsonPropertyName("reason")]
    [MaxLength(RolloutTexts.MaxLength)]
    public string? Reason { get; init; }
}

/// <summary>The current rollout's full state.</summary>
internal sealed record RolloutStatusResponse
{
    /// <summary>The rollout's id.</summary>
    [JsonPropertyName("rollout_id")]
    public required string RolloutId { get; init; }

    /// <summary>Its phase.</summary>
    [JsonPropertyName("phase")]
    [EnumDataType(typeof(RolloutPhase))]
    public required string Phase { get; init; }

    /// <summary>Its revision, raised by every change (what expected_revision compares).</summary>
    [JsonPropertyName("revision")]
    public required long Revision { get; init; }

    /// <summary>The strategy's name.</summary>
    [JsonPropertyName("strategy")]
    public required string Strategy { get; init; }

    /// <summary>The version serving before the rollout.</summary>
    [JsonPropertyName("champion")]
    public required string Champion { get; init; }

    /// <summary>The version rolled out.</summary>
    [JsonPropertyName("candidate")]
    public required string Candidate { get; init; }

    /// <summary>The index of the step running now.</summary>
    [JsonPropertyName("step_index")]
    public required int StepIndex { get; init; }

    /// <summary>The strategy's steps.</summary>
    [JsonPropertyName("steps")]
    public required IReadOnlyList<RolloutStepResponse> Steps { get; init; }

    /// <summary>The share of traffic the candidate answers (percent).</summary>
    [JsonPropertyName("candidate_percent")]
    public required double CandidatePercent { get; init; }

    /// <summary>The share of traffic the candidate also scores as a shadow (percent).</summary>
    [JsonPropertyName("shadow_percent")]
    public required double ShadowPercent { get; init; }

    /// <summary>Consecutive passing analyses of the current step.</summary>
    [JsonPropertyName("consecutive_passes")]
    public required int ConsecutivePasses { get; init; }

    /// <summary>Failed analyses so far.</summary>
    [JsonPropertyName("failures")]
    public required int Failures { get; init; }

    /// <summary>Whether the candidate was promoted.</summary>
    [JsonPropertyName("promoted")]
    public required bool Promoted { get; init; }

    /// <summary>Who started it (hidden from readers without the operator or auditor role).</summary>
    [JsonPropertyName("started_by")]
    public required string StartedBy { get; init; }

    /// <summary>When it started.</summary>
    [JsonPropertyName("started_at")]
    public required DateTimeOffset StartedAt { get; init; }

    /// <summary>When it last changed.</summary>
    [JsonPropertyName("updated_at")]
    public required DateTimeOffset UpdatedAt { get; init; }

    /// <summary>When the next analysis runs, or null.</summary>
    [JsonPropertyName("next_analysis_at")]
    public required DateTimeOffset? NextAnalysisAt { get; init; }

    /// <summary>Analyses run so far.</summary>
    [JsonPropertyName("analyses_run")]
    public required int AnalysesRun { get; init; }

    /// <summary>What happened last (a transition's message).</summary>
    [JsonPropertyName("message")]
    public required string Message { get; init; }

    /// <summary>The registry's current version.</summary>
    [JsonPropertyName("current_version")]
    public required string? CurrentVersion { get; init; }

    /// <summary>Whether this replica drives rollouts (always true in one process).</summary>
    [JsonPropertyName("leader")]
    public required bool Leader { get; init; }

    /// <summary>The latest analysis, or null before the first.</summary>
    [JsonPropertyName("last_analysis")]
    public required RolloutAnalysisResponse? LastAnalysis { get; init; }
}

/// <summary>A step of a rollout strategy.</summary>
internal sealed record RolloutStepResponse
{
    /// <summary>What the step does.</summary>
    [JsonPropertyName("kind")]
    [EnumDataType(typeof(RolloutStepKind))]
    public required string Kind { get; init; }

    /// <summary>The candidate's share of traffic the step sets (percent).</summary>
    [JsonPropertyName("percent")]
    public required double Percent { get; init; }

    /// <summary>The step's interval (analysis, pause), in seconds.</summary>
    [JsonPropertyName("interval_seconds")]
    public required double IntervalSeconds { get; init; }

    /// <summary>Passing analyses the step needs.</summary>
    [JsonPropertyName("required_passes")]
    public required int RequiredPasses { get; init; }
}

/// <summary>An analysis of the candidate against the champion.</summary>
internal sealed record RolloutAnalysisResponse
{
    /// <summary>The analysis' verdict.</summary>
    [JsonPropertyName("verdict")]
    [EnumDataType(typeof(GateVerdict))]
    public required string Verdict { get; init; }

    /// <summary>The start of the interval analysed.</summary>
    [JsonPropertyName("start")]
    public required DateTimeOffset Start { get; init; }

    /// <summary>The end of the interval analysed.</summary>
    [JsonPropertyName("end")]
    public required DateTimeOffset End { get; init; }

    /// <summary>Each gate's verdict.</summary>
    [JsonPropertyName("gates")]
    public required IReadOnlyList<RolloutGateResponse> Gates { get; init; }
}

/// <summary>One gate of an analysis.</summary>
internal sealed record RolloutGateResponse
{
    /// <summary>The gate's name.</summary>
    [JsonPropertyName("gate")]
    public required string Gate { get; init; }

    /// <summary>Its verdict.</summary>
    [JsonPropertyName("verdict")]
    [EnumDataType(typeof(GateVerdict))]
    public required string Verdict { get; init; }

    /// <summary>What it found.</summary>
    [JsonPropertyName("message")]
    public required string Message { get; init; }

    /// <summary>Its numbers by name; null where a ratio over an empty baseline has no finite value.</summary>
    [JsonPropertyName("evidence")]
    public required IReadOnlyDictionary<string, double?> Evidence { get; init; }
}

/// <summary>The outcome of a rollback, with its incident.</summary>
internal sealed record RollbackResponse
{
    /// <summary>The rolled-back rollout.</summary>
    [JsonPropertyName("rollout_id")]
    public required string RolloutId { get; init; }

    /// <summary>Its phase now.</summary>
    [JsonPropertyName("phase")]
    [EnumDataType(typeof(RolloutPhase))]
    public required string Phase { get; init; }

    /// <summary>Its revision now.</summary>
    [JsonPropertyName("revision")]
    public required long Revision { get; init; }

    /// <summary>The registry's current version (the restored one).</summary>
    [JsonPropertyName("current_version")]
    public required string? CurrentVersion { get; init; }

    /// <summary>What happened.</summary>
    [JsonPropertyName("message")]
    public required string Message { get; init; }

    /// <summary>The incident's id (GET /v1/incidents/{id}).</summary>
    [JsonPropertyName("incident_id")]
    public required string IncidentId { get; init; }

    /// <summary>The incident's path.</summary>
    [JsonPropertyName("incident_url")]
    public required string IncidentUrl { get; init; }
}

/// <summary>A page of the rollout history, newest first.</summary>
internal sealed record RolloutHistoryResponse
{
    /// <summary>The page's rollouts.</summary>
    [JsonPropertyName("rollouts")]
    public required IReadOnlyList<RolloutHistoryItem> Rollouts { get; init; }

    /// <summary>The cursor of the next (older) page, or null on the last page.</summary>
    [JsonPropertyName("next_page")]
    public required string? NextPage { get; init; }
}

/// <summary>One rollout as the audit log holds it.</summary>
internal sealed record RolloutHistoryItem
{
    /// <summary>The rollout's id.</summary>
    [JsonPropertyName("rollout_id")]
    public required string RolloutId { get; init; }

    /// <summary>The strategy (null while the log holds no start of it).</summary>
    [JsonPropertyName("strategy")]
    public required string? Strategy { get; init; }

    /// <summary>The version serving before it.</summary>
    [JsonPropertyName("champion")]
    public required string? Champion { get; init; }

    /// <summary>The version rolled out.</summary>
    [JsonPropertyName("candidate")]
    public required string? Candidate { get; init; }

    /// <summary>Who started it.</summary>
    [JsonPropertyName("started_by")]
    public required string StartedBy { get; init; }

    /// <summary>When it started.</summary>
    [JsonPropertyName("started_at")]
    public required DateTimeOffset StartedAt { get; init; }

    /// <summary>The latest phase the log holds.</summary>
    [JsonPropertyName("phase")]
    [EnumDataType(typeof(RolloutPhase))]
    public required string Phase { get; init; }

    /// <summary>What the phase means (in_progress until a terminal phase).</summary>
    [JsonPropertyName("outcome")]
    [AllowedValues("succeeded", "rolled_back", "aborted", "failed", "in_progress")]
    public required string Outcome { get; init; }

    /// <summary>When it reached its terminal phase (null while in progress).</summary>
    [JsonPropertyName("ended_at")]
    public required DateTimeOffset? EndedAt { get; init; }

    /// <summary>Its duration in seconds (null while in progress).</summary>
    [JsonPropertyName("duration_seconds")]
    public required double? DurationSeconds { get; init; }

    /// <summary>When its latest transition was recorded.</summary>
    [JsonPropertyName("updated_at")]
    public required DateTimeOffset UpdatedAt { get; init; }

    /// <summary>The latest transition's message.</summary>
    [JsonPropertyName("message")]
    public required string? Message { get; init; }

    /// <summary>How many phase changes.</summary>
    [JsonPropertyName("transitions")]
    public required int Transitions { get; init; }

    /// <summary>The rollback, when it was rolled back.</summary>
    [JsonPropertyName("rollback")]
    public required RolloutHistoryRollback? Rollback { get; init; }

    /// <summary>The first and last audit index of its events.</summary>
    [JsonPropertyName("audit")]
    public required RolloutHistoryAudit Audit { get; init; }
}

/// <summary>A rollout's rollback as audited.</summary>
internal sealed record RolloutHistoryRollback
{
    /// <summary>When.</summary>
    [JsonPropertyName("at")]
    public required DateTimeOffset At { get; init; }

    /// <summary>Who.</summary>
    [JsonPropertyName("actor")]
    public required string Actor { get; init; }

    /// <summary>automatic or manual.</summary>
    [JsonPropertyName("trigger")]
    public required string? Trigger { get; init; }

    /// <summary>Why.</summary>
    [JsonPropertyName("reason")]
    public required string? Reason { get; init; }

    /// <summary>Whether it came after the candidate's promotion.</summary>
    [JsonPropertyName("after_promotion")]
    public required bool AfterPromotion { get; init; }

    /// <summary>The index of the rollout.rollback audit entry.</summary>
    [JsonPropertyName("audit_index")]
    public required long AuditIndex { get; init; }
}

/// <summary>The audit indexes of a rollout's events.</summary>
internal sealed record RolloutHistoryAudit
{
    /// <summary>Its first event.</summary>
    [JsonPropertyName("first_index")]
    public required long FirstIndex { get; init; }

    /// <summary>Its latest transition.</summary>
    [JsonPropertyName("last_index")]
    public required long LastIndex { get; init; }
}

/// <summary>An incident report and its rollback steps, from the audit log.</summary>
internal sealed record IncidentResponse
{
    /// <summary>The incident's id.</summary>
    [JsonPropertyName("incident_id")]
    public required string IncidentId { get; init; }

    /// <summary>The rolled-back rollout.</summary>
    [JsonPropertyName("rollout_id")]
    public required string RolloutId { get; init; }

    /// <summary>verifying until step 6 has logged its report, then logged.</summary>
    [JsonPropertyName("state")]
    [AllowedValues("verifying", "logged")]
    public required string State { get; init; }

    /// <summary>How many revisions the report has.</summary>
    [JsonPropertyName("revisions")]
    public required int Revisions { get; init; }

    /// <summary>The latest revision of the report (incident_id, rollout_id, from, to, trigger, detected_cause, evidence, timeline, detected_at, restored_at, time_to_restore_seconds, verification, summary, cause, actions, report_revision, reported_by), or null before the first.</summary>
    [JsonPropertyName("report")]
    public required JsonObject? Report { get; init; }

    /// <summary>The rollback steps as audited (detect, identify, verify, execute, verify_success, log).</summary>
    [JsonPropertyName("steps")]
    public required IReadOnlyList<IncidentStepResponse> Steps { get; init; }
}

/// <summary>One audited rollback step.</summary>
internal sealed record IncidentStepResponse
{
    /// <summary>Its number, 1 to 6.</summary>
    [JsonPropertyName("step")]
    public required int Step { get; init; }

    /// <summary>Its name.</summary>
    [JsonPropertyName("name")]
    public required string? Name { get; init; }

    /// <summary>When it was recorded.</summary>
    [JsonPropertyName("at")]
    public required DateTimeOffset At { get; init; }

    /// <summary>The audit event's severity.</summary>
    [JsonPropertyName("severity")]
    [AllowedValues("debug", "info", "notice", "warning", "error", "critical")]
    public required string Severity { get; init; }

    /// <summary>Who.</summary>
    [JsonPropertyName("actor")]
    public required string Actor { get; init; }

    /// <summary>The audit entry's index.</summary>
    [JsonPropertyName("audit_index")]
    public required long AuditIndex { get; init; }

    /// <summary>The step's details.</summary>
    [JsonPropertyName("details")]
    public required JsonObject Details { get; init; }
}

/// <summary>An incident report's update, recorded.</summary>
internal sealed record IncidentUpdateResponse
{
    /// <summary>The incident's id.</summary>
    [JsonPropertyName("incident_id")]
    public required string IncidentId { get; init; }

    /// <summary>The rolled-back rollout.</summary>
    [JsonPropertyName("rollout_id")]
    public required string RolloutId { get; init; }

    /// <summary>The incident's path.</summary>
    [JsonPropertyName("incident_url")]
    public required string IncidentUrl { get; init; }
}

/// <summary>
/// The drift state: with enabled false (no reference profile) only enabled and detail; otherwise the monitored devices,
/// the latest report (of the device asked for, or the fleet's), and the pooled output drift.
/// </summary>
internal sealed record DriftResponse
{
    /// <summary>Whether drift is monitored (a reference profile is configured).</summary>
    [JsonPropertyName("enabled")]
    public required bool Enabled { get; init; }

    /// <summary>Why nothing is monitored (enabled false), why the device asked for has no monitor, or null.</summary>
    [JsonPropertyName("detail")]
    public required string? Detail { get; init; }

    /// <summary>Devices monitored now.</summary>
    [JsonPropertyName("devices")]
    public int? Devices { get; init; }

    /// <summary>The most devices the monitor keeps (Har:Service:DriftMaxDevices).</summary>
    [JsonPropertyName("capacity")]
    public int? Capacity { get; init; }

    /// <summary>With device: whether it has a monitor; null without.</summary>
    [JsonPropertyName("monitored")]
    public bool? Monitored { get; init; }

    /// <summary>The device of the report, or null.</summary>
    [JsonPropertyName("device")]
    public string? Device { get; init; }

    /// <summary>Whether there is a report.</summary>
    [JsonPropertyName("scored")]
    public bool? Scored { get; init; }

    /// <summary>The latest report, or null.</summary>
    [JsonPropertyName("report")]
    public DriftReportResponse? Report { get; init; }

    /// <summary>The pooled output drift of all devices, or null until scored.</summary>
    [JsonPropertyName("outputs")]
    public DriftOutputsResponse? Outputs { get; init; }
}

/// <summary>A drift report of a device (or of all devices).</summary>
internal sealed record DriftReportResponse
{
    /// <summary>The reference profile's hash.</summary>
    [JsonPropertyName("reference_hash")]
    public required string ReferenceHash { get; init; }

    /// <summary>The multiple-testing correction.</summary>
    [JsonPropertyName("correction")]
    [EnumDataType(typeof(MultipleTestingCorrection))]
    public required string Correction { get; init; }

    /// <summary>The significance level.</summary>
    [JsonPropertyName("alpha")]
    public required double Alpha { get; init; }

    /// <summary>Whether any channel drifted.</summary>
    [JsonPropertyName("any_drifted")]
    public required bool AnyDrifted { get; init; }

    /// <summary>Each channel's verdict.</summary>
    [JsonPropertyName("channels")]
    public required IReadOnlyList<DriftChannelResponse> Channels { get; init; }

    /// <summary>The sensor checks' findings.</summary>
    [JsonPropertyName("findings")]
    public required IReadOnlyList<SensorFinding> Findings { get; init; }

    /// <summary>The device's sequential alarm, or null.</summary>
    [JsonPropertyName("alarm")]
    public required DriftAlarmResponse? Alarm { get; init; }

    /// <summary>The checks that had no evidence in this scoring.</summary>
    [JsonPropertyName("unchecked")]
    public required IReadOnlyList<string> Unchecked { get; init; }
}

/// <summary>One channel's drift verdict.</summary>
internal sealed record DriftChannelResponse
{
    /// <summary>The channel.</summary>
    [JsonPropertyName("channel")]
    public required string Channel { get; init; }

    /// <summary>Its verdict.</summary>
    [JsonPropertyName("verdict")]
    [EnumDataType(typeof(DriftVerdict))]
    public required string Verdict { get; init; }

    /// <summary>The KS statistic (0 without a test).</summary>
    [JsonPropertyName("score")]
    public required double Score { get; init; }

    /// <summary>Observations.</summary>
    [JsonPropertyName("n")]
    public required int N { get; init; }

    /// <summary>Effective observations (autocorrelation).</summary>
    [JsonPropertyName("n_eff")]
    public required double NEff { get; init; }

    /// <summary>The Kolmogorov-Smirnov test, or null.</summary>
    [JsonPropertyName("ks")]
    public required TestEvidence? Ks { get; init; }

    /// <summary>The population stability index, or null.</summary>
    [JsonPropertyName("psi")]
    public required TestEvidence? Psi { get; init; }
}

/// <summary>The pooled output drift of all devices, with the estimated accuracy.</summary>
internal sealed record DriftOutputsResponse
{
    /// <summary>One line.</summary>
    [JsonPropertyName("summary")]
    public required string Summary { get; init; }

    /// <summary>The verdict.</summary>
    [JsonPropertyName("verdict")]
    [EnumDataType(typeof(DriftVerdict))]
    public required string Verdict { get; init; }

    /// <summary>Predictions pooled.</summary>
    [JsonPropertyName("predictions")]
    public required int Predictions { get; init; }

    /// <summary>The accuracy estimated from the confidence (CBPE), or null.</summary>
    [JsonPropertyName("estimated_accuracy")]
    public required double? EstimatedAccuracy { get; init; }

    /// <summary>Its margin, or null.</summary>
    [JsonPropertyName("estimated_accuracy_margin")]
    public required double? EstimatedAccuracyMargin { get; init; }

    /// <summary>The reference accuracy, or null.</summary>
    [JsonPropertyName("reference_accuracy")]
    public required double? ReferenceAccuracy { get; init; }

    /// <summary>Whether the estimate is reliable.</summary>
    [JsonPropertyName("estimate_reliable")]
    public required bool EstimateReliable { get; init; }

    /// <summary>Accuracies under the faults alarms named.</summary>
    [JsonPropertyName("named_faults")]
    public required IReadOnlyList<DriftNamedFaultResponse> NamedFaults { get; init; }

    /// <summary>Named causes the reference holds no accuracy for.</summary>
    [JsonPropertyName("unmatched_causes")]
    public required IReadOnlyList<string> UnmatchedCauses { get; init; }

    /// <summary>Predictions made under those causes.</summary>
    [JsonPropertyName("unmatched_predictions")]
    public required int UnmatchedPredictions { get; init; }
}

/// <summary>The accuracy under a named fault.</summary>
internal sealed record DriftNamedFaultResponse
{
    /// <summary>The cause.</summary>
    [JsonPropertyName("cause")]
    [EnumDataType(typeof(DriftCause))]
    public required string Cause { get; init; }

    /// <summary>The channels it affects.</summary>
    [JsonPropertyName("channels")]
    public required IReadOnlyList<string> Channels { get; init; }

    /// <summary>The fault.</summary>
    [JsonPropertyName("description")]
    public required string Description { get; init; }

    /// <summary>The reference's accuracy under it.</summary>
    [JsonPropertyName("reference_accuracy")]
    public required double ReferenceAccuracy { get; init; }

    /// <summary>Its margin.</summary>
    [JsonPropertyName("margin")]
    public required double Margin { get; init; }

    /// <summary>Predictions made under it.</summary>
    [JsonPropertyName("predictions")]
    public required int Predictions { get; init; }
}

/// <summary>A device's drift alarm.</summary>
internal sealed record DriftAlarmResponse
{
    /// <summary>Whether it is raised.</summary>
    [JsonPropertyName("raised")]
    public required bool Raised { get; init; }

    /// <summary>The cause it names (None while lowered).</summary>
    [JsonPropertyName("cause")]
    [EnumDataType(typeof(DriftCause))]
    public required string Cause { get; init; }

    /// <summary>The channels it names.</summary>
    [JsonPropertyName("channels")]
    public required IReadOnlyList<string> Channels { get; init; }

    /// <summary>What it found.</summary>
    [JsonPropertyName("diagnosis")]
    public required string Diagnosis { get; init; }
}

/// <summary>A page of the devices whose drift alarm is raised, in device-id order.</summary>
internal sealed record DriftAlarmsResponse
{
    /// <summary>Whether drift is monitored.</summary>
    [JsonPropertyName("enabled")]
    public required bool Enabled { get; init; }

    /// <summary>Devices monitored now.</summary>
    [JsonPropertyName("devices")]
    public required int Devices { get; init; }

    /// <summary>The page's alarmed devices.</summary>
    [JsonPropertyName("alarmed")]
    public required IReadOnlyList<DriftAlarmedDevice> Alarmed { get; init; }

    /// <summary>The page's last device (the next page starts after it), or null on the last page.</summary>
    [JsonPropertyName("next_page")]
    public required string? NextPage { get; init; }
}

/// <summary>An alarmed device.</summary>
internal sealed record DriftAlarmedDevice
{
    /// <summary>The device (stream id).</summary>
    [JsonPropertyName("device")]
    public required string Device { get; init; }

    /// <summary>Its alarm.</summary>
    [JsonPropertyName("alarm")]
    public required DriftAlarmResponse Alarm { get; init; }
}

/// <summary>An operator's audit event (POST /v1/audit/events); actor and timestamp are the service's.</summary>
[JsonUnmappedMemberHandling(JsonUnmappedMemberHandling.Disallow)]
internal sealed record AuditEventRequest
{
    /// <summary>The event's type, outside the service's namespaces (audit, backup, deployment, drift, http, model, registry, rollback, rollout).</summary>
    [JsonPropertyName("event_type")]
    [StringLength(AuditEventRules.MaxTypeLength, MinimumLength = 1)]
    [RegularExpression(AuditEventRules.TypePattern)]
    public required string EventType { get; init; }

    /// <summary>The type of the entity the event is about.</summary>
    [JsonPropertyName("entity_type")]
    [StringLength(AuditEventRules.MaxTypeLength, MinimumLength = 1)]
    [RegularExpression(AuditEventRules.TypePattern)]
    public required string EntityType { get; init; }

    /// <summary>The entity's id: printable text (no control or format characters, no line breaks).</summary>
    [JsonPropertyName("entity_id")]
    [StringLength(AuditEventRules.MaxEntityIdLength, MinimumLength = 1)]
    public required string EntityId { get; init; }

    /// <summary>The event's severity.</summary>
    [JsonPropertyName("severity")]
    [AllowedValues("debug", "info", "notice", "warning", "error", "critical")]
    public required string Severity { get; init; }

    /// <summary>Any JSON object ({} when there is nothing to add); numbers must be exact as IEEE 754 doubles.</summary>
    [JsonPropertyName("action_details")]
    public required JsonObject ActionDetails { get; init; }
}

/// <summary>The appended entry.</summary>
internal sealed record AuditAppendResponse
{
    /// <summary>Its index in the log.</summary>
    [JsonPropertyName("index")]
    public required long Index { get; init; }

    /// <summary>Its Merkle leaf hash (lowercase hex).</summary>
    [JsonPropertyName("leaf_hash")]
    public required string LeafHash { get; init; }
}

/// <summary>A page of audit entries, in log order.</summary>
internal sealed record AuditEventsResponse
{
    /// <summary>The page's entries.</summary>
    [JsonPropertyName("entries")]
    public required IReadOnlyList<AuditEntryResponse> Entries { get; init; }

    /// <summary>The cursor of the next page, or null on the last page.</summary>
    [JsonPropertyName("next_page")]
    public required string? NextPage { get; init; }
}

/// <summary>An audit entry.</summary>
internal sealed record AuditEntryResponse
{
    /// <summary>Its index in the log.</summary>
    [JsonPropertyName("index")]
    public required long Index { get; init; }

    /// <summary>The record's kind.</summary>
    [JsonPropertyName("kind")]
    [EnumDataType(typeof(AuditRecordKind))]
    public required string Kind { get; init; }

    /// <summary>The event type (deployment and rollback for those records).</summary>
    [JsonPropertyName("event_type")]
    public required string EventType { get; init; }

    /// <summary>The entity's type.</summary>
    [JsonPropertyName("entity_type")]
    public required string EntityType { get; init; }

    /// <summary>The entity's id.</summary>
    [JsonPropertyName("entity_id")]
    public required string EntityId { get; init; }

    /// <summary>Who.</summary>
    [JsonPropertyName("actor")]
    public required string Actor { get; init; }

    /// <summary>When (ISO 8601, round-trip format).</summary>
    [JsonPropertyName("timestamp")]
    public required DateTimeOffset Timestamp { get; init; }

    /// <summary>Its Merkle leaf hash (lowercase hex).</summary>
    [JsonPropertyName("leaf_hash")]
    public required string LeafHash { get; init; }

    /// <summary>The record as canonical JSON (RFC 8785).</summary>
    [JsonPropertyName("record")]
    public required JsonObject Record { get; init; }
}

/// <summary>An offline inclusion proof of one entry against a signed checkpoint (har-audit-proof/v1).</summary>
internal sealed record AuditProofResponse
{
    /// <summary>The bundle's format.</summary>
    [JsonPropertyName("format")]
    public required string Format { get; init; }

    /// <summary>The entry's index.</summary>
    [JsonPropertyName("leaf_index")]
    public required long LeafIndex { get; init; }

    /// <summary>The checkpoint's tree size.</summary>
    [JsonPropertyName("tree_size")]
    public required long TreeSize { get; init; }

    /// <summary>The entry's leaf hash (lowercase hex).</summary>
    [JsonPropertyName("leaf_hash")]
    public required string LeafHash { get; init; }

    /// <summary>The checkpoint's root hash (lowercase hex).</summary>
    [JsonPropertyName("root_hash")]
    public required string RootHash { get; init; }

    /// <summary>The audit path, leaf to root (lowercase hex).</summary>
    [JsonPropertyName("inclusion_path")]
    public required IReadOnlyList<string> InclusionPath { get; init; }

    /// <summary>The entry's bytes (base64).</summary>
    [JsonPropertyName("entry")]
    public required byte[] Entry { get; init; }

    /// <summary>The entry as JSON.</summary>
    [JsonPropertyName("entry_json")]
    public required JsonObject EntryJson { get; init; }

    /// <summary>The signed checkpoint (a signed note).</summary>
    [JsonPropertyName("checkpoint")]
    public required string Checkpoint { get; init; }
}

/// <summary>A backup's optional body (POST /v1/backups).</summary>
[JsonUnmappedMemberHandling(JsonUnmappedMemberHandling.Disallow)]
internal sealed record BackupRequest
{
    /// <summary>Why (recorded in the audit log and the manifest).</summary>
    [JsonPropertyName("reason")]
    [MaxLength(RolloutTexts.MaxLength)]
    public string? Reason { get; init; }
}

/// <summary>A backup's summary (also, base64, the Har-Backup-Summary header when the archive is the body).</summary>
internal sealed record BackupResponse
{
    /// <summary>The backup's id (GET /v1/backups/{id}).</summary>
    [JsonPropertyName("backup_id")]
    public required string BackupId { get; init; }

    /// <summary>The archive's SHA-256 (lowercase hex).</summary>
    [JsonPropertyName("sha256")]
    public required string Sha256 { get; init; }

    /// <summary>The archive's size.</summary>
    [JsonPropertyName("bytes")]
    public required long Bytes { get; init; }

    /// <summary>Audit entries in it.</summary>
    [JsonPropertyName("audit_entries")]
    public required long AuditEntries { get; init; }

    /// <summary>Files in it.</summary>
    [JsonPropertyName("files")]
    public required int Files { get; init; }

    /// <summary>Labelled windows in it.</summary>
    [JsonPropertyName("labelled_windows")]
    public required int LabelledWindows { get; init; }

    /// <summary>The registry's current version.</summary>
    [JsonPropertyName("current_version")]
    public required string? CurrentVersion { get; init; }

    /// <summary>The registered versions.</summary>
    [JsonPropertyName("versions")]
    public required IReadOnlyList<string> Versions { get; init; }

    /// <summary>Archives deleted by Backup:Keep (at most 20 in the header).</summary>
    [JsonPropertyName("pruned")]
    public required IReadOnlyList<string> Pruned { get; init; }

    /// <summary>How many archives were deleted.</summary>
    [JsonPropertyName("pruned_total")]
    public required int PrunedTotal { get; init; }
}

/// <summary>The backup archives, newest first.</summary>
internal sealed record BackupListResponse
{
    /// <summary>The archives.</summary>
    [JsonPropertyName("backups")]
    public required IReadOnlyList<BackupListItem> Backups { get; init; }
}

/// <summary>A backup archive.</summary>
internal sealed record BackupListItem
{
    /// <summary>Its id.</summary>
    [JsonPropertyName("backup_id")]
    public required string BackupId { get; init; }

    /// <summary>Its size.</summary>
    [JsonPropertyName("bytes")]
    public required long Bytes { get; init; }

    /// <summary>When it was written.</summary>
    [JsonPropertyName("written_at")]
    public required DateTimeOffset WrittenAt { get; init; }
}

/// <summary>
/// Member groups of which a body must hold one (all members of the group): any number of them, or with
/// <see cref="Exclusive"/> exactly one (a schema's anyOf or oneOf of required lists).
/// </summary>
[AttributeUsage(AttributeTargets.Class)]
internal sealed class RequiredAlternativesAttribute : Attribute
{
    /// <summary>Gets the groups, each a comma-separated list of member names.</summary>
    public string[] Groups { get; init; } = [];

    /// <summary>Gets whether exactly one group may be given.</summary>
    public bool Exclusive { get; init; }
}

/// <summary>The bound of the texts the rollout and backup routes record (reason, summary, cause, actions).</summary>
internal static class RolloutTexts
{
    /// <summary>The most characters of each text (Har.Deployment's RolloutCommand bound).</summary>
    public const int MaxLength = 8_192;
}
