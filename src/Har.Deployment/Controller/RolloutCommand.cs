namespace Har.Deployment;

/// <summary>
/// A typed operator command. Every command names who sends it and why, and may state the phase (and
/// revision) the sender believes the rollout is in: when that is stale the command is refused with a
/// <see cref="RolloutConflictException"/> instead of silently acting on a state the sender never saw.
/// </summary>
public sealed record RolloutCommand
{
    private RolloutCommand(RolloutCommandKind kind, string actor, string reason)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(actor);
        ArgumentNullException.ThrowIfNull(reason);
        Kind = kind;
        Actor = actor;
        Reason = reason;
    }

    /// <summary>Gets what the command does.</summary>
    internal RolloutCommandKind Kind { get; }

    /// <summary>Gets who sends the command (recorded in the audit log).</summary>
    internal string Actor { get; }

    /// <summary>Gets why (recorded in the audit log).</summary>
    internal string Reason { get; }

    /// <summary>Gets the phase the sender expects the rollout to be in, or <see langword="null"/> to skip the check. For <see cref="RolloutCommandKind.Start"/> it is the phase of the previous rollout (any terminal phase is fine when <see langword="null"/>).</summary>
    public RolloutPhase? ExpectedPhase { internal get; init; }

    /// <summary>Gets the revision the sender expects, or <see langword="null"/> to skip the check.</summary>
    public long? ExpectedRevision { internal get; init; }

    /// <summary>Gets the candidate version (<see cref="RolloutCommandKind.Start"/> only).</summary>
    internal string? Candidate { get; private init; }

    /// <summary>Gets the strategy name (<see cref="RolloutCommandKind.Start"/> only).</summary>
    internal string? Strategy { get; private init; }

    /// <summary>Gets the rollout id to use (<see cref="RolloutCommandKind.Start"/>; generated when <see langword="null"/>), or the rolled-back rollout whose incident report <see cref="RolloutCommandKind.Incident"/> completes (the current one when <see langword="null"/>).</summary>
    public string? RolloutId { internal get; init; }

    /// <summary>Gets the version a <see cref="RolloutCommandKind.Rollback"/> restores: the rollout's champion when <see langword="null"/>, else any earlier registered version that verifies against the audit log.</summary>
    public string? RollbackTo { internal get; init; }

    /// <summary>Gets the incident report's summary (what happened), recorded with a <see cref="RolloutCommandKind.Rollback"/> or set afterwards with <see cref="RolloutCommandKind.Incident"/>.</summary>
    public string? IncidentSummary { internal get; init; }

    /// <summary>Gets the incident report's cause as the operator found it (the detected cause is recorded on its own).</summary>
    public string? IncidentCause { internal get; init; }

    /// <summary>Gets the incident report's actions taken or to take.</summary>
    public string? IncidentActions { internal get; init; }

    /// <summary>The most characters of <see cref="Actor"/> (a name, not a text).</summary>
    internal const int MaxActorLength = 256;

    /// <summary>The most characters of the reason, and of each incident text (summary, cause, actions).</summary>
    internal const int MaxTextLength = 8_192;

    /// <summary>The most characters of a rollout id.</summary>
    internal const int MaxRolloutIdLength = 128;

    /// <summary>
    /// Checks what the command records before anything is applied: every text goes into the audit log and the rollout
    /// state, so an unbounded one would be applied and then fail to be recorded. Found from outside: a 2 MB reason started
    /// a rollout, then every later record of it (the next steps, an abort, the incident) was refused by the log's record
    /// limit, leaving a rollout no command could end, whose state the next start could not replay.
    /// </summary>
    /// <exception cref="ArgumentException">A text is too long, the actor holds control characters, or the rollout id is not a plain name.</exception>
    internal void Validate()
    {
        if (Actor.Length > MaxActorLength || Actor.Any(char.IsControl))
        {
            throw new ArgumentException($"The command's actor has {Actor.Length} characters{(Actor.Any(char.IsControl) ? " and control characters" : string.Empty)}; expected a name of at most {MaxActorLength} characters without control characters.", "actor");
        }

        foreach (var (name, text) in (ReadOnlySpan<(string, string?)>)[("reason", Reason), ("incident summary", IncidentSummary), ("incident cause", IncidentCause), ("incident actions", IncidentActions)])
        {
            if (text is { Length: > MaxTextLength })
            {
                throw new ArgumentException($"The command's {name} has {text.Length:N0} characters; expected at most {MaxTextLength:N0} (it is recorded in the audit log and the rollout state).", name.Replace(' ', '_'));
            }
        }

        if (RolloutId is { } id && !IsPlainName(id))
        {
            throw new ArgumentException($"Rollout id '{(id.Length > 40 ? id[..40] + "…" : id)}' is not a plain name; expected 1 to {MaxRolloutIdLength} letters, digits, '.', '_' or '-', starting with a letter or digit (it names the rollout's archived state file).", "rolloutId");
        }
    }

    private static bool IsPlainName(string id) =>
        id.Length is > 0 and <= MaxRolloutIdLength && char.IsAsciiLetterOrDigit(id[0]) && !id.Contains("..", StringComparison.Ordinal)
        && id.All(c => char.IsAsciiLetterOrDigit(c) || c is '.' or '_' or '-');

    /// <summary>Creates a start command.</summary>
    /// <param name="candidate">The registered version to roll out.</param>
    /// <param name="strategy">The strategy's name, e.g. <c>canary</c>.</param>
    /// <param name="actor">Who starts it.</param>
    /// <param name="reason">Why.</param>
    /// <returns>The command.</returns>
    public static RolloutCommand Start(string candidate, string strategy, string actor, string reason)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(candidate);
        ArgumentException.ThrowIfNullOrWhiteSpace(strategy);
        return new(RolloutCommandKind.Start, actor, reason) { Candidate = candidate, Strategy = strategy };
    }

    /// <summary>Creates a pause command.</summary>
    /// <param name="actor">Who sends it.</param>
    /// <param name="reason">Why.</param>
    /// <returns>The command.</returns>
    internal static RolloutCommand Pause(string actor, string reason) => new(RolloutCommandKind.Pause, actor, reason);

    /// <summary>Creates a resume command.</summary>
    /// <param name="actor">Who sends it.</param>
    /// <param name="reason">Why.</param>
    /// <returns>The command.</returns>
    internal static RolloutCommand Resume(string actor, string reason) => new(RolloutCommandKind.Resume, actor, reason);

    /// <summary>Creates an approve command.</summary>
    /// <param name="actor">Who approves.</param>
    /// <param name="reason">Why.</param>
    /// <returns>The command.</returns>
    internal static RolloutCommand Approve(string actor, string reason) => new(RolloutCommandKind.Approve, actor, reason);

    /// <summary>Creates a promote command.</summary>
    /// <param name="actor">Who sends it.</param>
    /// <param name="reason">Why.</param>
    /// <returns>The command.</returns>
    internal static RolloutCommand Promote(string actor, string reason) => new(RolloutCommandKind.Promote, actor, reason);

    /// <summary>Creates an abort command.</summary>
    /// <param name="actor">Who sends it.</param>
    /// <param name="reason">Why.</param>
    /// <returns>The command.</returns>
    internal static RolloutCommand Abort(string actor, string reason) => new(RolloutCommandKind.Abort, actor, reason);

    /// <summary>Creates a rollback command.</summary>
    /// <param name="actor">Who sends it.</param>
    /// <param name="reason">Why.</param>
    /// <returns>The command.</returns>
    internal static RolloutCommand Rollback(string actor, string reason) => new(RolloutCommandKind.Rollback, actor, reason);

    /// <summary>Creates a command of any kind (for generic callers such as a CLI); <see cref="RolloutCommandKind.Start"/> needs <paramref name="candidate"/> and <paramref name="strategy"/>.</summary>
    /// <param name="kind">The command.</param>
    /// <param name="actor">Who sends it.</param>
    /// <param name="reason">Why.</param>
    /// <param name="candidate">The candidate (start only).</param>
    /// <param name="strategy">The strategy (start only).</param>
    /// <returns>The command.</returns>
    public static RolloutCommand Create(RolloutCommandKind kind, string actor, string reason, string? candidate = null, string? strategy = null) =>
        kind == RolloutCommandKind.Start
            ? Start(candidate ?? throw new ArgumentNullException(nameof(candidate)), strategy ?? throw new ArgumentNullException(nameof(strategy)), actor, reason)
            : new(kind, actor, reason);
}

/// <summary>A command stated an expected phase or revision that is no longer current.</summary>
public sealed class RolloutConflictException : Exception
{
    /// <summary>Initializes a new instance of the <see cref="RolloutConflictException"/> class.</summary>
    internal RolloutConflictException()
    {
    }

    /// <summary>Initializes a new instance of the <see cref="RolloutConflictException"/> class.</summary>
    /// <param name="message">What conflicted.</param>
    internal RolloutConflictException(string message)
        : base(message)
    {
    }

    /// <summary>Initializes a new instance of the <see cref="RolloutConflictException"/> class.</summary>
    /// <param name="message">What conflicted.</param>
    /// <param name="innerException">The underlying error.</param>
    internal RolloutConflictException(string message, Exception innerException)
        : base(message, innerException)
    {
    }
}

/// <summary>A command is not allowed in the rollout's current phase (e.g. approve while progressing).</summary>
public sealed class RolloutCommandRejectedException : InvalidOperationException
{
    /// <summary>Initializes a new instance of the <see cref="RolloutCommandRejectedException"/> class.</summary>
    internal RolloutCommandRejectedException()
    {
    }

    /// <summary>Initializes a new instance of the <see cref="RolloutCommandRejectedException"/> class.</summary>
    /// <param name="message">Why the command was refused and which phases accept it.</param>
    internal RolloutCommandRejectedException(string message)
        : base(message)
    {
    }

    /// <summary>Initializes a new instance of the <see cref="RolloutCommandRejectedException"/> class.</summary>
    /// <param name="message">Why the command was refused.</param>
    /// <param name="innerException">The underlying error.</param>
    internal RolloutCommandRejectedException(string message, Exception innerException)
        : base(message, innerException)
    {
    }
}
