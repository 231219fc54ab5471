using System.Text.Json.Nodes;

namespace Har.Deployment;

/// <summary>Retiring a version: taken out of service by an audited decision, its files kept.</summary>
public sealed partial class ModelRegistry
{
    /// <summary>The most characters of a retirement's reason (it is recorded in the audit log).</summary>
    internal const int MaxRetirementReasonLength = 2_048;

    /// <summary>The most characters of the actor's name.</summary>
    internal const int MaxActorLength = 256;

    private readonly Lock _retirementGate = new();
    private string? _starting;

    /// <summary>Gets the retirements read from the audit log; <see langword="null"/> when the registry has no log.</summary>
    private RegistryRetirements? Retirements { get; }

    /// <summary>
    /// Gets or sets where the registry reads the rollout a retirement must not break: set by a <see cref="RolloutController"/>
    /// on this registry (its live state, shared by a fleet); without one, the state file at <c>.rollout</c> in the registry.
    /// </summary>
    internal Func<RolloutState?>? RolloutStateSource { get; set; }

    /// <summary>
    /// Retires <paramref name="version"/>: from now on no rollout starts with it and no rollback is sent to it, in this
    /// process and in every registry sharing the audit log, until <see cref="Reinstate(string, string, string?)"/>. The
    /// decision is a <c>registry.retired</c> entry of the audit log (who, when, why), written before it takes effect;
    /// the version's files stay, verified as before (the log's records name them). Retiring a retired version returns
    /// its retirement and records nothing.
    /// </summary>
    /// <param name="version">The registered version, e.g. <c>1.1.0</c> or <c>v1.1.0</c>.</param>
    /// <param name="reason">Why (required; at most 2,048 characters, recorded in the audit log).</param>
    /// <param name="actor">Who retires it; the operating-system user name when <see langword="null"/>.</param>
    /// <returns>The retirement in force.</returns>
    /// <exception cref="ArgumentException"><paramref name="version"/> is not a semantic version, or <paramref name="reason"/> or <paramref name="actor"/> is blank, too long or holds control characters.</exception>
    /// <exception cref="KeyNotFoundException">The version is not registered.</exception>
    /// <exception cref="ModelInUseException">The version is current, a running rollout's champion or candidate, or the version a promoted rollout can still roll back to; nothing was changed.</exception>
    /// <exception cref="InvalidOperationException">The registry was opened without an audit log, where retirements are kept.</exception>
    /// <exception cref="ModelRegistryUnavailableException">The audit log did not take the record; nothing was changed.</exception>
    public ModelRetirement Retire(string version, string reason, string? actor = null)
    {
        var (model, who) = PrepareDecision(version, reason, actor, "retire");
        using var writer = AcquireWriter();
        lock (_retirementGate)
        {
            if (Retirements!.Find(model.Version) is { } existing)
            {
                return existing;
            }

            if (InUse(model.Version) is { } use)
            {
                throw new ModelInUseException($"Model version {model.Version} was not retired: {use}.");
            }

            AppendDecision(RegistryRetirements.Retired, model, who, "warning", new JsonObject
            {
                ["version"] = model.Version,
                ["sha256"] = model.Sha256,
                ["registry_id"] = RegistryId,
                ["reason"] = reason,
            });
            return Retirements.Find(model.Version)
                ?? throw new InvalidOperationException($"The retirement of {model.Version} was written but is not in the audit log's index; verify the log.");
        }
    }

    /// <summary>
    /// Takes a retirement back (<c>registry.reinstated</c> in the audit log): the version can be rolled out and rolled back
    /// to again.
    /// </summary>
    /// <param name="version">The registered version.</param>
    /// <param name="reason">Why (required; at most 2,048 characters, recorded in the audit log).</param>
    /// <param name="actor">Who reinstates it; the operating-system user name when <see langword="null"/>.</param>
    /// <returns><see langword="true"/> when it was retired and is reinstated now; <see langword="false"/> when it was not retired (nothing recorded).</returns>
    /// <exception cref="ArgumentException"><paramref name="version"/> is not a semantic version, or <paramref name="reason"/> or <paramref name="actor"/> is blank, too long or holds control characters.</exception>
    /// <exception cref="KeyNotFoundException">The version is not registered.</exception>
    /// <exception cref="InvalidOperationException">The registry was opened without an audit log.</exception>
    /// <exception cref="ModelRegistryUnavailableException">The audit log did not take the record; nothing was changed.</exception>
    public bool Reinstate(string version, string reason, string? actor = null)
    {
        var (model, who) = PrepareDecision(version, reason, actor, "reinstate");
        using var writer = AcquireWriter();
        lock (_retirementGate)
        {
            if (Retirements!.Find(model.Version) is not { } retirement)
            {
                return false;
            }

            AppendDecision(RegistryRetirements.Reinstated, model, who, "info", new JsonObject
            {
                ["version"] = model.Version,
                ["sha256"] = model.Sha256,
                ["registry_id"] = RegistryId,
                ["reason"] = reason,
                ["retired_index"] = retirement.AuditIndex,
            });
            return true;
        }
    }

    /// <summary>Gets the retirement in force for <paramref name="version"/>, as the audit log records it now (also another replica's).</summary>
    /// <param name="version">The version, e.g. <c>1.1.0</c> or <c>v1.1.0</c>.</param>
    /// <returns>The retirement, or <see langword="null"/> when the version is not retired (or the registry has no audit log).</returns>
    /// <exception cref="ArgumentException"><paramref name="version"/> is not a semantic version.</exception>
    public ModelRetirement? GetRetirement(string version) => Retirements?.Find(ModelVersionName.Normalize(version));

    /// <summary>Gets every retirement in force, by version, with one read of the audit log's new entries (for a listing of many versions).</summary>
    /// <returns>The retirements in force; empty when none is, or when the registry has no audit log.</returns>
    public IReadOnlyDictionary<string, ModelRetirement> GetRetirements() => Retirements?.All() ?? new Dictionary<string, ModelRetirement>();

    /// <summary>
    /// A rollout of <paramref name="version"/> is starting in this process: refused (the retirement returned) when it is
    /// retired, otherwise no retirement of it is taken until <see cref="EndStart"/> (by then the rollout's state names it).
    /// </summary>
    internal ModelRetirement? TryBeginStart(string version)
    {
        lock (_retirementGate)
        {
            var retired = Retirements?.Find(version);
            _starting = retired is null ? version : null;
            return retired;
        }
    }

    /// <summary>The start that <see cref="TryBeginStart"/> announced has committed its state, or ended.</summary>
    internal void EndStart()
    {
        lock (_retirementGate)
        {
            _starting = null;
        }
    }

    /// <summary>What a retirement of <paramref name="version"/> would break, or <see langword="null"/>.</summary>
    private string? InUse(string version)
    {
        var current = CurrentVersion;
        if (current == version)
        {
            return "it is the current version and serves traffic; roll out another version first";
        }

        if (_starting == version)
        {
            return "a rollout of it is starting in this process";
        }

        var s = RolloutStateSource is { } source ? source() : new RolloutStateStore(Path.Combine(Root, ".rollout")).Load();
        if (s is null)
        {
            return null;
        }

        if (!s.Phase.IsTerminal() && (version == s.Champion || version == s.Candidate))
        {
            return $"rollout {s.RolloutId} ({s.Phase}) has it as its {(version == s.Candidate ? "candidate" : "champion")}; retire it once the rollout has ended (abort it to end it now)";
        }

        if (s.Phase == RolloutPhase.Succeeded && s.Promoted && version == s.Champion && current == s.Candidate)
        {
            return $"rollout {s.RolloutId} promoted {s.Candidate} over it, and a rollback of that rollout restores it while {s.Candidate} is current; retire it once another rollout has started";
        }

        return null;
    }

    private (RegisteredModel Model, string Actor) PrepareDecision(string version, string reason, string? actor, string verb)
    {
        ArgumentNullException.ThrowIfNull(version);
        ArgumentNullException.ThrowIfNull(reason);
        if (string.IsNullOrWhiteSpace(reason) || reason.Length > MaxRetirementReasonLength || reason.Any(static c => char.IsControl(c) && c is not '\n' and not '\t'))
        {
            throw new ArgumentException($"The reason to {verb} {ModelVersionName.Printable(version)} {(string.IsNullOrWhiteSpace(reason) ? "is blank" : $"has {reason.Length:N0} characters{(reason.Any(static c => char.IsControl(c) && c is not '\n' and not '\t') ? " and control characters" : string.Empty)}")}; expected why, in at most {MaxRetirementReasonLength:N0} characters without control characters other than line breaks and tabs (it is recorded in the audit log).", nameof(reason));
        }

        var who = actor ?? Environment.UserName;
        if (string.IsNullOrWhiteSpace(who) || who.Length > MaxActorLength || who.Any(char.IsControl))
        {
            throw new ArgumentException($"The actor has {who.Length} characters{(who.Any(char.IsControl) ? " and control characters" : string.Empty)}; expected a name of 1 to {MaxActorLength} characters without control characters.", nameof(actor));
        }

        if (Retirements is null)
        {
            throw new InvalidOperationException($"Cannot {verb} {ModelVersionName.Printable(version)}: retirements are kept in the audit log, and this registry was opened without one; open it with the audit log its versions were registered through.");
        }

        return (Get(version), who);
    }

    private void AppendDecision(string eventType, RegisteredModel model, string actor, string severity, JsonObject details)
    {
        try
        {
            Audit!.AppendAsync(new DeploymentAuditEvent(eventType, "model", $"{model.ModelName}@{model.Version}", severity, actor, _time.GetUtcNow(), details), CancellationToken.None).AsTask().GetAwaiter().GetResult();
        }
        catch (Exception ex) when (ex is IOException or InvalidOperationException or ObjectDisposedException or UnauthorizedAccessException)
        {
            throw new ModelRegistryUnavailableException($"Model version {model.Version} was not {(eventType == RegistryRetirements.Retired ? "retired" : "reinstated")}: its audit record could not be written ({ex.GetType().Name}), and the registry changes nothing it cannot audit. Retry when the audit log is writable again.", ex);
        }
    }
}
