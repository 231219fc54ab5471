using System.Globalization;
using System.Security.Cryptography;
using System.Text.Json.Nodes;
using Har.Inference;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace Har.Deployment;

/// <summary>
/// The control plane of model rollouts: a persisted state machine (see the package README for the
/// diagram) that executes a strategy's steps, judges the candidate at every analysis interval, rolls
/// back on its own when a gate fails, and writes every command, transition, verdict and rollback to the
/// audit log. It is never on the prediction path: it publishes immutable traffic plans to a
/// <see cref="ServingPipeline"/> and reads what the pipeline's observers collected.
/// </summary>
/// <remarks>
/// Time comes only from the <see cref="TimeProvider"/>: call <see cref="ReconcileAsync"/> (or run
/// <see cref="RunAsync"/>) and the controller does whatever is due at the provider's current time, so a
/// whole rollout runs in a test on a fake clock. State is written (temp file, fsync, rename, directory
/// fsync) before its effects; a restarted controller resumes from it and never applies a step twice.
/// </remarks>
public sealed partial class RolloutController : IAsyncDisposable
{
    /// <summary>The actor name of automatic decisions in the audit log.</summary>
    public const string SystemActor = "har-deployment";

    private readonly ModelRegistry _registry;
    private readonly RolloutControllerOptions _options;
    private readonly TimeProvider _time;
    private readonly ILogger _logger;
    private readonly RolloutStateStore _store;
    private readonly IServingControl _serving;
    private readonly RolloutOutbox _outbox;
    private readonly RolloutAnalyzer _analyzer;
    private readonly DeploymentMetrics _metrics;
    private readonly Dictionary<string, IRolloutStrategy> _strategies;
    private readonly SemaphoreSlim _gate = new(1, 1);
    private readonly IReadOnlyList<string> _labels;
    private TaskCompletionSource _wake = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private RolloutState? _state;
    private string? _fault;
    private int _disposed;

    private RolloutController(ModelRegistry registry, RolloutControllerOptions options, IServingControl serving, IDeploymentAuditSink? audit, IClassMixTest classMix, ILoggerFactory? loggerFactory, TimeProvider time)
    {
        _registry = registry;
        _options = options;
        _time = time;
        _logger = (ILogger?)loggerFactory?.CreateLogger<RolloutController>() ?? NullLogger.Instance;
        _store = new RolloutStateStore(options.StateDirectory ?? Path.Combine(registry.Root, ".rollout"));
        _outbox = new RolloutOutbox(audit, time);
        _serving = serving;
        serving.Models.SetSmokeWindows([.. options.SmokeTestWindows], options.SmokeTestMinAgreement);
        _analyzer = new RolloutAnalyzer(options.Analysis, classMix);
        _metrics = new DeploymentMetrics(options.MetricsRegistry);
        _strategies = new Dictionary<string, IRolloutStrategy>(StringComparer.Ordinal)
        {
            [RolloutStrategyNames.Recreate] = new RecreateStrategy(options.Recreate),
            [RolloutStrategyNames.BlueGreen] = new BlueGreenStrategy(options.BlueGreen),
            [RolloutStrategyNames.Canary] = new CanaryStrategy(options.Canary),
            [RolloutStrategyNames.Shadow] = new ShadowStrategy(options.Shadow),
        };
        foreach (var strategy in options.Strategies)
        {
            _strategies[strategy.Name] = strategy;
        }

        _labels = [];
    }

    /// <summary>Gets the traffic plan the controller last published (tests and diagnostics).</summary>
    internal TrafficPlan Plan => _serving.Plan;

    /// <summary>Gets the observations the analysis reads (fed by the serving pipeline's rollout observer).</summary>
    internal RolloutObservations Observations => _serving.Observations;

    private IModelVersionHost _host => _serving.Models;

    /// <summary>Gets the registry the controller deploys from.</summary>
    public ModelRegistry Registry => _registry;

    /// <summary>Gets the names of the registered strategies.</summary>
    public IReadOnlyCollection<string> StrategyNames => _strategies.Keys;

    /// <summary>Gets the current rollout's status, or <see langword="null"/> when there has been none.</summary>
    public RolloutStatus? Status => Volatile.Read(ref _state) is { } s ? ToStatus(s) : null;

    /// <summary>Gets the path of the persisted state file.</summary>
    public string StatePath => _store.StatePath;

    /// <summary>
    /// Opens a controller on a registry and the pipeline it steers: reads the persisted rollout (if any),
    /// flushes audit events that a crash left unwritten, loads and warms the versions the current state
    /// serves (a candidate that no longer loads ends its rollout as Failed, on the champion), and publishes
    /// the traffic plan. It does not advance the rollout; <see cref="ReconcileAsync"/> does.
    /// </summary>
    /// <param name="registry">The model registry (the one <paramref name="pipeline"/> was opened on).</param>
    /// <param name="pipeline">The serving pipeline whose traffic plan the controller publishes.</param>
    /// <param name="options">The options, or <see langword="null"/> for the defaults.</param>
    /// <param name="loggerFactory">Where log messages go.</param>
    /// <param name="timeProvider">The clock; <see cref="TimeProvider.System"/> by default.</param>
    /// <param name="cancellationToken">Cancels opening.</param>
    /// <returns>The controller.</returns>
    public static Task<RolloutController> OpenAsync(ModelRegistry registry, ServingPipeline pipeline, RolloutControllerOptions? options = null, ILoggerFactory? loggerFactory = null, TimeProvider? timeProvider = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(registry);
        ArgumentNullException.ThrowIfNull(pipeline);
        options ??= new RolloutControllerOptions();
        var time = timeProvider ?? TimeProvider.System;
        return OpenAsync(registry, options, pipeline, registry.Audit, DriftClassMixTest.Instance, loggerFactory, time, cancellationToken);
    }

    internal static async Task<RolloutController> OpenAsync(ModelRegistry registry, RolloutControllerOptions options, IServingControl serving, IDeploymentAuditSink? audit, IClassMixTest classMix, ILoggerFactory? loggerFactory, TimeProvider time, CancellationToken cancellationToken)
    {
        options.Validate();
        var controller = new RolloutController(registry, options, serving, audit, classMix, loggerFactory, time);
        await controller.InitializeAsync(cancellationToken).ConfigureAwait(false);
        return controller;
    }

    /// <summary>Reads the persisted status of the rollout in <paramref name="stateDirectory"/> without opening a controller (no models are loaded).</summary>
    /// <param name="stateDirectory">The controller's state folder (by default <c>.rollout</c> inside the registry).</param>
    /// <returns>The status, or <see langword="null"/> when there has been no rollout.</returns>
    public static RolloutStatus? ReadStatus(string stateDirectory)
    {
        var state = new RolloutStateStore(stateDirectory).Load();
        return state is null ? null : ToStatus(state);
    }

    /// <summary>Executes an operator command.</summary>
    /// <param name="command">The command.</param>
    /// <param name="cancellationToken">Cancels the command (the state stays consistent).</param>
    /// <returns>The status after the command and everything it triggered immediately.</returns>
    /// <exception cref="RolloutConflictException">The command's expected phase or revision is stale.</exception>
    /// <exception cref="RolloutCommandRejectedException">The command is not allowed in the current phase.</exception>
    public async Task<RolloutStatus> ExecuteAsync(RolloutCommand command, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(command);
        await _gate.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            await ExecuteCoreAsync(command, cancellationToken).ConfigureAwait(false);
            return ToStatus(_state!);
        }
        finally
        {
            _gate.Release();
            Wake();
        }
    }

    /// <summary>Does whatever is due at the clock's current time: finishes interrupted transitions, runs due analyses, advances steps, promotes or rolls back.</summary>
    /// <param name="cancellationToken">Cancels the reconciliation.</param>
    /// <returns>The status afterwards, or <see langword="null"/> when there has been no rollout.</returns>
    public async Task<RolloutStatus?> ReconcileAsync(CancellationToken cancellationToken = default)
    {
        await _gate.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            if (_state is null)
            {
                return null;
            }

            await ReconcileCoreAsync(cancellationToken).ConfigureAwait(false);
            return ToStatus(_state);
        }
        finally
        {
            _gate.Release();
        }
    }

    /// <summary>Reconciles until cancelled, sleeping (on the <see cref="TimeProvider"/>) until the next analysis or wait is due, or a command arrives.</summary>
    /// <param name="cancellationToken">Stops the loop.</param>
    /// <returns>A task that completes when cancelled.</returns>
    /// <remarks>
    /// No exception of a reconciliation ends the loop: it is logged, shown in <see cref="Fault"/> and in
    /// <c>har_rollout_loop_faulted</c>, traffic stays on the plan in force, and the loop retries.
    /// </remarks>
    public async Task RunAsync(CancellationToken cancellationToken)
    {
        while (!cancellationToken.IsCancellationRequested)
        {
            var wake = Volatile.Read(ref _wake).Task;
            TimeSpan delay;
            try
            {
                await ReconcileAsync(cancellationToken).ConfigureAwait(false);
                if (Volatile.Read(ref _fault) is not null)
                {
                    Volatile.Write(ref _fault, null);
                    _metrics.SetLoopFaulted(false);
                    Log.LoopRecovered(_logger);
                }

                delay = NextDelay();
            }
            catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
            {
                return;
            }
#pragma warning disable CA1031 // the loop outlives any failure; the failure is logged, exposed and retried
            catch (Exception ex)
#pragma warning restore CA1031
            {
                Volatile.Write(ref _fault, $"{ex.GetType().Name}: {ex.Message}");
                _metrics.SetLoopFaulted(true);
                delay = _options.FaultRetryInterval;
                Log.LoopFaulted(_logger, delay.TotalSeconds, ex);
            }

            try
            {
                await Task.WhenAny(Task.Delay(delay, _time, cancellationToken), wake).ConfigureAwait(false);
            }
            catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
            {
                return;
            }
        }
    }

    /// <summary>Gets why the last reconciliation of <see cref="RunAsync"/> failed, or <see langword="null"/> when it succeeded (the loop keeps retrying).</summary>
    public string? Fault => Volatile.Read(ref _fault);

    /// <inheritdoc />
    public async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0)
        {
            return;
        }

        // Wait for a reconciliation in progress, so no command runs on a disposed pipeline.
        await _gate.WaitAsync().ConfigureAwait(false);
        _gate.Dispose();
    }

    internal DateTimeOffset? NextDueAt()
    {
        var s = Volatile.Read(ref _state);
        if (s is null || s.Phase != RolloutPhase.Progressing)
        {
            return null;
        }

        return s.CurrentStep switch
        {
            { Kind: RolloutStepKind.Analyze } => s.NextAnalysisAt,
            { Kind: RolloutStepKind.Pause } step => s.StepStartedAt + step.Interval,
            _ => null,
        };
    }

    /// <summary>
    /// The instant part of an automatic rollback: puts 100 % of the traffic back on the warm champion with
    /// one atomic plan swap. Persisting and auditing the rollback follow it.
    /// </summary>
    internal void SwitchTrafficToChampion(RolloutState state) => _serving.Publish(TrafficPlan.Single(state.Champion, state.Revision + 1));

    private TimeSpan NextDelay()
    {
        var due = NextDueAt();
        if (due is null)
        {
            return TimeSpan.FromSeconds(5);
        }

        var delay = due.Value - _time.GetUtcNow();
        return delay < TimeSpan.Zero ? TimeSpan.Zero : delay;
    }

    private void Wake() => Interlocked.Exchange(ref _wake, new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously)).TrySetResult();

    private async Task InitializeAsync(CancellationToken ct)
    {
        var state = _store.Load();
        _state = state;
        if (state is not null)
        {
            Log.Resumed(_logger, state.RolloutId, state.Phase, state.StepIndex, state.Revision);
            await _outbox.RecoverAsync(state, ct).ConfigureAwait(false);
        }

        var failure = await EnsureResidentAsync(ct).ConfigureAwait(false);
        ApplyPlan(state);
        if (failure is not null)
        {
            // A candidate that no longer loads (or crashed the last process while loading) ends its rollout; the champion serves.
            await FailCandidateAsync(failure, ct).ConfigureAwait(false);
        }
    }

    /// <summary>
    /// Loads what the state serves. The champion (or the registry's current version) must load; a
    /// candidate that cannot be loaded is not thrown but returned as a reason to end its rollout.
    /// </summary>
    private async Task<string?> EnsureResidentAsync(CancellationToken ct)
    {
        var s = _state;
        var needed = new List<string>();
        if (s is null || (s.Phase.IsTerminal() && !(s.Phase == RolloutPhase.Succeeded && s.Promoted)))
        {
            if (s is not null)
            {
                needed.Add(s.Champion);
            }
            else if (_registry.CurrentVersion is { } current)
            {
                needed.Add(current);
            }
        }
        else if (s.Phase == RolloutPhase.Succeeded)
        {
            needed.Add(s.Candidate);
        }
        else
        {
            needed.Add(s.Champion);
            if (s.Phase != RolloutPhase.Pending && s.Phase != RolloutPhase.RollingBack)
            {
                needed.Add(s.Candidate);
            }
        }

        foreach (var version in needed)
        {
            if (_host.IsLoaded(version))
            {
                continue;
            }

            var isCandidate = s is not null && version == s.Candidate && !s.Phase.IsTerminal() && s.Phase != RolloutPhase.Promoting;
            try
            {
                await LoadServableAsync(version, "serve", ct).ConfigureAwait(false);
            }
            catch (Exception ex) when (isCandidate && IsCandidateFailure(ex, ct))
            {
                return $"candidate {version} could not be loaded: {ex.Message}";
            }
        }

        return null;
    }

    /// <summary>Verifies and loads a version, refusing one whose window geometry the pipeline cannot serve.</summary>
    private async Task LoadServableAsync(string version, string purpose, CancellationToken ct)
    {
        var verified = _registry.ReadVerified(version, purpose);
        await _host.LoadAsync(verified, ct).ConfigureAwait(false);
        var geometry = WindowGeometry.From(_host.GetCard(version));
        if (!geometry.IsCompatibleWith(_serving.Geometry))
        {
            await _host.UnloadAsync(version).ConfigureAwait(false);
            throw new ModelCardException(null, $"Version {version} asks for {geometry}; the serving pipeline serves {_serving.Geometry}.");
        }
    }

    /// <summary>Any failure of a candidate (but not a cancellation of the caller) ends its rollout instead of escaping.</summary>
    private static bool IsCandidateFailure(Exception ex, CancellationToken ct) => ex is not OperationCanceledException || !ct.IsCancellationRequested;

    /// <summary>Ends the active rollout as Failed with all traffic on the champion (the reason is audited with the transition).</summary>
    private async Task FailCandidateAsync(string reason, CancellationToken ct)
    {
        var s = _state!;
        Log.Error(_logger, s.RolloutId, reason, new InvalidOperationException(reason));
        if (!_host.IsLoaded(s.Champion))
        {
            await LoadServableAsync(s.Champion, "serve champion", ct).ConfigureAwait(false);
        }

        if (s.Promoted || _registry.CurrentVersion != s.Champion)
        {
            _registry.SetCurrent(s.Champion);
        }

        await EndOnChampionAsync(RolloutPhase.Failed, SystemActor, reason, ct).ConfigureAwait(false);
    }

    private void ApplyPlan(RolloutState? s)
    {
        TrafficPlan plan;
        if (s is null)
        {
            plan = TrafficPlan.Single(_registry.CurrentVersion ?? "none");
            _metrics.SetWeights(plan.Stable, null, 0);
            _serving.Publish(plan);
            return;
        }

        switch (s.Phase)
        {
            case RolloutPhase.Progressing or RolloutPhase.Paused or RolloutPhase.AwaitingApproval:
                plan = new TrafficPlan(s.Champion, s.Candidate, s.CandidateBuckets, s.Salt, s.Candidate, s.ShadowBuckets, s.Mirror, s.Revision);
                break;
            case RolloutPhase.Promoting:
                plan = TrafficPlan.Single(s.Candidate, s.Revision);
                break;
            case RolloutPhase.Succeeded when s.Promoted:
                plan = TrafficPlan.Single(s.Candidate, s.Revision);
                break;
            default:
                plan = TrafficPlan.Single(s.Champion, s.Revision);
                break;
        }

        _serving.Publish(plan);
        _metrics.SetWeights(plan.Stable, plan.Candidate, plan.CandidatePercent);
        _metrics.SetPhase(s.Phase);
    }

    private async Task ExecuteCoreAsync(RolloutCommand command, CancellationToken ct)
    {
        var current = _state;
        var phase = current?.Phase;
        if (command.ExpectedPhase is { } expected && expected != phase)
        {
            await _outbox.RejectAsync(command, _state, "conflict", ct).ConfigureAwait(false);
            throw new RolloutConflictException($"Command {command.Kind} by {command.Actor} expected the rollout in phase {expected}, but it is {(phase?.ToString() ?? "absent (no rollout yet)")} at revision {current?.Revision ?? 0}; re-read the status and retry.");
        }

        if (command.ExpectedRevision is { } revision && revision != (current?.Revision ?? 0))
        {
            await _outbox.RejectAsync(command, _state, "conflict", ct).ConfigureAwait(false);
            throw new RolloutConflictException($"Command {command.Kind} by {command.Actor} expected revision {revision}, but the rollout is at revision {current?.Revision ?? 0} (phase {phase?.ToString() ?? "none"}); re-read the status and retry.");
        }

        if (!IsAllowed(command.Kind, current))
        {
            await _outbox.RejectAsync(command, _state, "rejected", ct).ConfigureAwait(false);
            throw new RolloutCommandRejectedException($"Command {command.Kind} is not allowed while the rollout is {(phase?.ToString() ?? "absent")}; it is accepted in {AllowedPhases(command.Kind)}.");
        }

        if (command.Kind == RolloutCommandKind.Start)
        {
            await StartAsync(command, ct).ConfigureAwait(false);
            return;
        }

        if (await EnsureResidentAsync(ct).ConfigureAwait(false) is { } failure)
        {
            await FailCandidateAsync(failure, ct).ConfigureAwait(false);
            throw new RolloutCommandRejectedException($"Command {command.Kind} was not applied: {failure}; the rollout ended as Failed and {current!.Champion} serves all traffic.");
        }

        var next = current!.Clone();
        Log.Command(_logger, next.RolloutId, command.Kind, command.Actor, command.Reason);
        RolloutOutbox.EmitCommand(next, command, _time.GetUtcNow());
        switch (command.Kind)
        {
            case RolloutCommandKind.Pause:
                next.PausedFrom = next.Phase;
                await TransitionAsync(next, RolloutPhase.Paused, command.Actor, $"paused: {command.Reason}", ct).ConfigureAwait(false);
                break;
            case RolloutCommandKind.Resume:
                var to = next.PausedFrom ?? RolloutPhase.Progressing;
                next.PausedFrom = null;
                if (to == RolloutPhase.Progressing && next.CurrentStep?.Kind == RolloutStepKind.Analyze)
                {
                    // The paused period is not analysed: the next interval starts now.
                    next.NextAnalysisAt = null;
                }

                await TransitionAsync(next, to, command.Actor, $"resumed: {command.Reason}", ct).ConfigureAwait(false);
                await AdvanceAsync(ct).ConfigureAwait(false);
                break;
            case RolloutCommandKind.Approve:
                next.StepIndex++;
                next.StepStartedAt = _time.GetUtcNow();
                await TransitionAsync(next, RolloutPhase.Progressing, command.Actor, $"approved: {command.Reason}", ct).ConfigureAwait(false);
                await AdvanceAsync(ct).ConfigureAwait(false);
                break;
            case RolloutCommandKind.Promote:
                await CommitAsync(next, ct).ConfigureAwait(false);
                await PromoteAsync(command.Actor, $"promoted by {command.Actor}: {command.Reason}", ct).ConfigureAwait(false);
                break;
            case RolloutCommandKind.Abort:
                await CommitAsync(next, ct).ConfigureAwait(false);
                await EndOnChampionAsync(RolloutPhase.Aborted, command.Actor, $"aborted by {command.Actor}: {command.Reason}", ct).ConfigureAwait(false);
                break;
            case RolloutCommandKind.Rollback:
                await CommitAsync(next, ct).ConfigureAwait(false);
                await RollBackAsync(command.Actor, $"rolled back by {command.Actor}: {command.Reason}", automatic: false, evidence: null, ct).ConfigureAwait(false);
                break;
        }
    }

    private bool IsAllowed(RolloutCommandKind kind, RolloutState? s)
    {
        var phase = s?.Phase;
        return kind switch
        {
            RolloutCommandKind.Start => phase is null || phase.Value.IsTerminal(),
            RolloutCommandKind.Pause => phase is RolloutPhase.Progressing or RolloutPhase.AwaitingApproval,
            RolloutCommandKind.Resume => phase is RolloutPhase.Paused,
            RolloutCommandKind.Approve => phase is RolloutPhase.AwaitingApproval,
            RolloutCommandKind.Promote => phase is RolloutPhase.Progressing or RolloutPhase.Paused or RolloutPhase.AwaitingApproval,
            RolloutCommandKind.Abort => phase is RolloutPhase.Pending or RolloutPhase.Progressing or RolloutPhase.Paused or RolloutPhase.AwaitingApproval,
            RolloutCommandKind.Rollback => phase is RolloutPhase.Progressing or RolloutPhase.Paused or RolloutPhase.AwaitingApproval
                || (phase is RolloutPhase.Succeeded && s!.Promoted && _registry.CurrentVersion == s.Candidate),
            _ => false,
        };
    }

    private static string AllowedPhases(RolloutCommandKind kind) => kind switch
    {
        RolloutCommandKind.Start => "no rollout or a finished one (Succeeded, RolledBack, Aborted, Failed)",
        RolloutCommandKind.Pause => "Progressing, AwaitingApproval",
        RolloutCommandKind.Resume => "Paused",
        RolloutCommandKind.Approve => "AwaitingApproval",
        RolloutCommandKind.Promote => "Progressing, Paused, AwaitingApproval",
        RolloutCommandKind.Abort => "Pending, Progressing, Paused, AwaitingApproval",
        RolloutCommandKind.Rollback => "Progressing, Paused, AwaitingApproval, or Succeeded while the promoted candidate is still current",
        _ => "no phase",
    };

    private async Task StartAsync(RolloutCommand command, CancellationToken ct)
    {
        var champion = _registry.CurrentVersion
            ?? throw new RolloutCommandRejectedException($"The registry '{_registry.Root}' has no current version; register a champion first (the first registered version becomes current).");
        var candidate = _registry.Get(command.Candidate!).Version;
        if (candidate == champion)
        {
            throw new RolloutCommandRejectedException($"Version {candidate} is already current; expected a candidate different from the champion.");
        }

        if (!_strategies.TryGetValue(command.Strategy!, out var strategy))
        {
            throw new RolloutCommandRejectedException($"Strategy '{command.Strategy}' is not registered; expected one of {string.Join(", ", _strategies.Keys.Order(StringComparer.Ordinal))}.");
        }

        var steps = strategy.CreateSteps(new RolloutStrategyContext(name => _strategies.TryGetValue(name, out var s) ? s : throw new KeyNotFoundException($"Strategy '{name}' is not registered; expected one of {string.Join(", ", _strategies.Keys)}.")));
        if (steps.Count == 0)
        {
            throw new RolloutCommandRejectedException($"Strategy '{strategy.Name}' produced no steps; expected at least one.");
        }

        if (CheckServable(candidate) is { } refusal)
        {
            // Refused before any step: nothing persisted, traffic untouched; the refusal is audited.
            await _outbox.RejectAsync(command, _state, "refused", ct, refusal).ConfigureAwait(false);
            throw new RolloutCommandRejectedException(refusal);
        }

        if (_state is not null)
        {
            _store.Archive(_state);
        }

        var now = _time.GetUtcNow();
        var id = command.RolloutId ?? string.Create(CultureInfo.InvariantCulture, $"rollout-{now:yyyyMMdd-HHmmss}-{candidate}-{Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(3))}");
        var next = new RolloutState
        {
            RolloutId = id,
            Strategy = strategy.Name,
            Champion = champion,
            Candidate = candidate,
            Phase = RolloutPhase.Pending,
            Steps = [.. steps.Select(RolloutState.StepRecord.From)],
            Salt = TrafficPlan.SaltFor(id),
            StartedBy = command.Actor,
            StartedAt = now,
            StepStartedAt = now,
            Revision = _state?.Revision ?? 0,
            Message = $"started by {command.Actor}: {command.Reason}",
        };
        Log.Command(_logger, id, command.Kind, command.Actor, command.Reason);
        RolloutOutbox.EmitCommand(next, command, _time.GetUtcNow());
        RolloutOutbox.Emit(next, "rollout.transition", "info", command.Actor, new JsonObject
        {
            ["from"] = null,
            ["to"] = nameof(RolloutPhase.Pending),
            ["champion"] = champion,
            ["candidate"] = candidate,
            ["strategy"] = strategy.Name,
            ["steps"] = new JsonArray([.. steps.Select(s => (JsonNode)s.ToString())]),
            ["message"] = next.Message,
        });
        await CommitAsync(next, ct).ConfigureAwait(false);
        await RunPendingAsync(ct).ConfigureAwait(false);
    }

    /// <summary>Why the pipeline cannot serve <paramref name="candidate"/> (window geometry, channels, sample rate, an unreadable card), or <see langword="null"/>.</summary>
    private string? CheckServable(string candidate)
    {
        ModelCard card;
        try
        {
            card = ModelCard.Load(_registry.Get(candidate).ModelPath);
        }
        catch (Exception ex) when (ex is ModelCardException or IOException or UnauthorizedAccessException)
        {
            return $"Candidate {candidate} cannot be served: its model card could not be read ({ex.Message}).";
        }

        var geometry = WindowGeometry.From(card);
        return geometry.IsCompatibleWith(_serving.Geometry)
            ? null
            : $"Candidate {candidate} cannot be served: its card asks for {geometry}, but the serving pipeline serves {_serving.Geometry}; expected a candidate with the champion's window geometry, channels and sample rate.";
    }

    private async Task RunPendingAsync(CancellationToken ct)
    {
        var s = _state!;
        var (allowed, message) = await RunHooksAsync(RolloutHookPoint.PreRollout, "pre-rollout", ct).ConfigureAwait(false);
        if (!allowed)
        {
            await EndOnChampionAsync(RolloutPhase.Failed, SystemActor, $"pre-rollout hook refused: {message}", ct).ConfigureAwait(false);
            return;
        }

        if (!_host.IsLoaded(s.Champion))
        {
            await LoadServableAsync(s.Champion, "serve champion", ct).ConfigureAwait(false);
        }

        try
        {
            // Load and warm-up failures of any kind (a corrupt file, a card the pipeline cannot serve, a
            // warm-up that asks for more memory than there is) end the rollout; the champion keeps serving.
            await LoadServableAsync(s.Candidate, "load candidate", ct).ConfigureAwait(false);
        }
        catch (Exception ex) when (IsCandidateFailure(ex, ct))
        {
            await EndOnChampionAsync(RolloutPhase.Failed, SystemActor, $"candidate {s.Candidate} could not be verified and loaded: {ex.Message}", ct).ConfigureAwait(false);
            return;
        }

        var next = s.Clone();
        next.StepIndex = 0;
        next.StepStartedAt = _time.GetUtcNow();
        await TransitionAsync(next, RolloutPhase.Progressing, SystemActor, $"candidate {s.Candidate} verified (sha256), loaded and warm", ct).ConfigureAwait(false);
        await AdvanceAsync(ct).ConfigureAwait(false);
    }

    private async Task ReconcileCoreAsync(CancellationToken ct)
    {
        if (await EnsureResidentAsync(ct).ConfigureAwait(false) is { } failure)
        {
            await FailCandidateAsync(failure, ct).ConfigureAwait(false);
            return;
        }

        switch (_state!.Phase)
        {
            case RolloutPhase.Pending:
                await RunPendingAsync(ct).ConfigureAwait(false);
                break;
            case RolloutPhase.Progressing:
                await AdvanceAsync(ct).ConfigureAwait(false);
                break;
            case RolloutPhase.Promoting:
                await CompletePromotionAsync(ct).ConfigureAwait(false);
                break;
            case RolloutPhase.RollingBack:
                await CompleteRollbackAsync(ct).ConfigureAwait(false);
                break;
        }
    }

    /// <summary>Applies steps while the current one can complete at the current time; each applied step is persisted before the next.</summary>
    private async Task AdvanceAsync(CancellationToken ct)
    {
        while (_state!.Phase == RolloutPhase.Progressing)
        {
            var s = _state;
            var step = s.CurrentStep;
            var now = _time.GetUtcNow();
            if (step is null)
            {
                await PromoteAsync(SystemActor, "every step passed", ct).ConfigureAwait(false);
                return;
            }

            var next = s.Clone();
            switch (step.Kind)
            {
                case RolloutStepKind.SetWeight:
                    next.CandidateBuckets = step.Buckets;
                    next.Mirror = step.MirrorToStable;
                    await CompleteStepAsync(next, step, null, ct).ConfigureAwait(false);
                    break;
                case RolloutStepKind.Shadow:
                    next.ShadowBuckets = step.Buckets;
                    await CompleteStepAsync(next, step, null, ct).ConfigureAwait(false);
                    break;
                case RolloutStepKind.SmokeTest:
                    SmokeTestOutcome outcome;
                    try
                    {
                        outcome = _host.SmokeTest(s.Candidate, s.Champion);
                    }
                    catch (Exception ex) when (IsCandidateFailure(ex, ct))
                    {
                        outcome = new SmokeTestOutcome(false, $"the candidate threw during the smoke test: {ex.GetType().Name}: {ex.Message}", new Dictionary<string, double>());
                    }

                    var evidence = new JsonObject { ["built_in"] = outcome.Message, ["built_in_passed"] = outcome.Passed, ["evidence"] = ToJson(outcome.Evidence) };
                    if (!outcome.Passed)
                    {
                        await RollBackAsync(SystemActor, $"smoke test failed: {outcome.Message}", automatic: true, evidence, ct).ConfigureAwait(false);
                        return;
                    }

                    var (allowed, message) = await RunHooksAsync(RolloutHookPoint.SmokeTest, $"smoke-{s.StepIndex}", ct).ConfigureAwait(false);
                    if (!allowed)
                    {
                        await RollBackAsync(SystemActor, $"smoke-test hook refused: {message}", automatic: true, evidence, ct).ConfigureAwait(false);
                        return;
                    }

                    await CompleteStepAsync(next, step, evidence, ct).ConfigureAwait(false);
                    break;
                case RolloutStepKind.Approval:
                    await TransitionAsync(next, RolloutPhase.AwaitingApproval, SystemActor, "waiting for approval", ct).ConfigureAwait(false);
                    return;
                case RolloutStepKind.Pause:
                    if (now < s.StepStartedAt + step.Interval)
                    {
                        return;
                    }

                    await CompleteStepAsync(next, step, null, ct).ConfigureAwait(false);
                    break;
                case RolloutStepKind.Finish:
                    await CompleteStepAsync(next, step, null, ct).ConfigureAwait(false);
                    await EndOnChampionAsync(RolloutPhase.Succeeded, SystemActor, $"evaluation of {s.Candidate} finished without promotion", ct).ConfigureAwait(false);
                    return;
                case RolloutStepKind.Analyze:
                    if (s.NextAnalysisAt is null)
                    {
                        next.NextAnalysisAt = now + step.Interval;
                        next.ConsecutivePasses = 0;
                        next.InconclusiveInStep = 0;
                        Observations.Reset(now);
                        await CommitAsync(next, ct).ConfigureAwait(false);
                        return;
                    }

                    if (now < s.NextAnalysisAt.Value)
                    {
                        return;
                    }

                    if (!await AnalyzeAsync(next, step, now, ct).ConfigureAwait(false))
                    {
                        return;
                    }

                    break;
            }
        }
    }

    /// <summary>Evaluates one interval; returns whether the step completed (so the loop continues).</summary>
    private async Task<bool> AnalyzeAsync(RolloutState next, RolloutStep step, DateTimeOffset now, CancellationToken ct)
    {
        var paired = next.Mirror || next.ShadowBuckets > 0;
        var labels = _host.IsLoaded(next.Champion) ? _host.GetCard(next.Champion).Labels : _labels;
        var snapshot = Observations.TakeSnapshot(next.Candidate, next.Champion, now, labels, _host.GetBaselineLatency(next.Candidate), _host.GetBaselineLatency(next.Champion), _host.GetOutputReference(next.Candidate), _host.GetOutputReference(next.Champion));
        var result = _analyzer.Evaluate(snapshot, paired);
        _metrics.Analysis(result);
        next.AnalysesRun++;
        next.LastAnalysis = result;
        switch (result.Verdict)
        {
            case GateVerdict.Pass:
                next.ConsecutivePasses++;
                next.Failures = 0;
                next.ConsecutiveUnmeasurable = 0;
                break;
            case GateVerdict.Fail:
                next.ConsecutivePasses = 0;
                next.Failures++;
                next.ConsecutiveUnmeasurable = 0;
                break;
            case GateVerdict.Inconclusive:
                next.InconclusiveInStep++;
                next.ConsecutiveUnmeasurable = 0;
                break;
            default:
                next.ConsecutiveUnmeasurable++;
                break;
        }

        var verdictEvent = new JsonObject
        {
            ["step"] = next.StepIndex,
            ["verdict"] = result.Verdict.ToString(),
            ["interval_start"] = result.Start.ToString("O", CultureInfo.InvariantCulture),
            ["interval_end"] = result.End.ToString("O", CultureInfo.InvariantCulture),
            ["candidate_percent"] = next.CandidateBuckets / 100.0,
            ["consecutive_passes"] = next.ConsecutivePasses,
            ["failures"] = next.Failures,
            ["gates"] = new JsonArray([.. result.Gates.Select(g => (JsonNode)new JsonObject
            {
                ["gate"] = g.Gate,
                ["verdict"] = g.Verdict.ToString(),
                ["message"] = g.Message,
                ["evidence"] = ToJson(g.Evidence),
            })]),
        };
        Log.Analysis(_logger, next.RolloutId, result.Verdict.ToString(), next.ConsecutivePasses, next.Failures);

        string? rollbackReason = null;
        if (result.Verdict == GateVerdict.Fail && next.Failures >= _options.FailureThreshold)
        {
            rollbackReason = $"{next.Failures} failing analysis interval(s) (threshold {_options.FailureThreshold}): {string.Join("; ", result.Gates.Where(g => g.Verdict == GateVerdict.Fail).Select(g => g.Message))}";
        }
        else if (next.ConsecutiveUnmeasurable >= _options.UnmeasurableLimit)
        {
            rollbackReason = $"{next.ConsecutiveUnmeasurable} consecutive unmeasurable intervals (limit {_options.UnmeasurableLimit}): {string.Join("; ", result.Gates.Where(g => g.Verdict == GateVerdict.Unmeasurable).Select(g => g.Message))}";
        }
        else if (next.InconclusiveInStep > _options.MaxInconclusiveIntervals)
        {
            rollbackReason = $"{next.InconclusiveInStep} inconclusive intervals in one step (limit {_options.MaxInconclusiveIntervals}); the candidate could not be judged";
        }

        if (rollbackReason is not null)
        {
            // Traffic first: the champion is warm, one atomic swap puts every stream back on it.
            SwitchTrafficToChampion(next);
            RolloutOutbox.Emit(next, "rollout.verdict", "warning", SystemActor, verdictEvent);
            await CommitAsync(next, ct).ConfigureAwait(false);
            await RollBackAsync(SystemActor, rollbackReason, automatic: true, verdictEvent, ct).ConfigureAwait(false);
            return false;
        }

        RolloutOutbox.Emit(next, "rollout.verdict", result.Verdict == GateVerdict.Pass ? "info" : "warning", SystemActor, verdictEvent);
        if (next.ConsecutivePasses >= step.RequiredPasses)
        {
            next.NextAnalysisAt = null;
            await CompleteStepAsync(next, step, new JsonObject { ["passes"] = next.ConsecutivePasses }, ct).ConfigureAwait(false);
            return true;
        }

        next.NextAnalysisAt = now + step.Interval;
        await CommitAsync(next, ct).ConfigureAwait(false);
        return false;
    }

    private async Task CompleteStepAsync(RolloutState next, RolloutStep step, JsonObject? evidence, CancellationToken ct)
    {
        var details = new JsonObject
        {
            ["step"] = next.StepIndex,
            ["kind"] = step.Kind.ToString(),
            ["description"] = step.ToString(),
            ["candidate_percent"] = next.CandidateBuckets / 100.0,
            ["shadow_percent"] = next.ShadowBuckets / 100.0,
        };
        if (evidence is not null)
        {
            details["evidence"] = evidence.DeepClone();
        }

        RolloutOutbox.Emit(next, "rollout.step", "info", SystemActor, details);
        next.StepIndex++;
        next.StepStartedAt = _time.GetUtcNow();
        next.ConsecutivePasses = 0;
        next.InconclusiveInStep = 0;
        next.NextAnalysisAt = null;
        next.Message = $"applied step {next.StepIndex - 1}: {step}";
        await CommitAsync(next, ct).ConfigureAwait(false);
    }

    private async Task PromoteAsync(string actor, string reason, CancellationToken ct)
    {
        var (allowed, message) = await RunHooksAsync(RolloutHookPoint.PrePromotion, "pre-promotion", ct).ConfigureAwait(false);
        if (!allowed)
        {
            await RollBackAsync(SystemActor, $"pre-promotion hook refused: {message}", automatic: true, evidence: null, ct).ConfigureAwait(false);
            return;
        }

        var next = _state!.Clone();
        await TransitionAsync(next, RolloutPhase.Promoting, actor, reason, ct).ConfigureAwait(false);
        await CompletePromotionAsync(ct).ConfigureAwait(false);
    }

    private async Task CompletePromotionAsync(CancellationToken ct)
    {
        var s = _state!;
        try
        {
            // The registry checks the candidate again (file, record, config) before it moves `current`.
            _registry.SetCurrent(s.Candidate);
        }
        catch (Exception ex) when (IsCandidateFailure(ex, ct))
        {
            await FailCandidateAsync($"promotion of {s.Candidate} refused: {ex.Message}", ct).ConfigureAwait(false);
            return;
        }

        var next = s.Clone();
        next.Promoted = true;
        next.CandidateBuckets = TrafficPlan.BucketCount;
        next.ShadowBuckets = 0;
        next.Mirror = false;
        await TransitionAsync(next, RolloutPhase.Succeeded, SystemActor, $"{s.Candidate} promoted: it serves all traffic and is the registry's current version", ct).ConfigureAwait(false);
        await _host.UnloadAsync(s.Champion).ConfigureAwait(false);
        await RunPostHooksAsync(ct).ConfigureAwait(false);
    }

    private async Task RollBackAsync(string actor, string reason, bool automatic, JsonObject? evidence, CancellationToken ct)
    {
        var s = _state!;
        Log.RollingBack(_logger, s.RolloutId, s.Candidate, s.Champion, reason);
        if (!_host.IsLoaded(s.Champion))
        {
            await _host.LoadAsync(_registry.ReadVerified(s.Champion, "roll back"), ct).ConfigureAwait(false);
        }

        SwitchTrafficToChampion(s);
        var next = s.Clone();
        RolloutOutbox.Emit(next, "rollout.rollback", "critical", actor, new JsonObject
        {
            ["model"] = _registry.Get(s.Candidate).ModelName,
            ["from"] = s.Candidate,
            ["to"] = s.Champion,
            ["trigger"] = automatic ? "automatic" : "manual",
            ["reason"] = reason,
            ["operator"] = actor,
            ["after_promotion"] = s.Promoted,
            ["evidence"] = evidence?.DeepClone(),
        });
        _metrics.Rollback(automatic);
        await TransitionAsync(next, RolloutPhase.RollingBack, actor, reason, ct).ConfigureAwait(false);
        await CompleteRollbackAsync(ct).ConfigureAwait(false);
    }

    private async Task CompleteRollbackAsync(CancellationToken ct)
    {
        var s = _state!;
        if (s.Promoted || _registry.CurrentVersion != s.Champion)
        {
            _registry.SetCurrent(s.Champion);
        }

        var next = s.Clone();
        next.Promoted = false;
        next.CandidateBuckets = 0;
        next.ShadowBuckets = 0;
        next.Mirror = false;
        next.NextAnalysisAt = null;
        await TransitionAsync(next, RolloutPhase.RolledBack, SystemActor, $"{s.Candidate} rolled back; {s.Champion} serves all traffic ({s.Message})", ct).ConfigureAwait(false);
        await _host.UnloadAsync(s.Candidate).ConfigureAwait(false);
        await RunPostHooksAsync(ct).ConfigureAwait(false);
    }

    private async Task EndOnChampionAsync(RolloutPhase phase, string actor, string reason, CancellationToken ct)
    {
        var s = _state!;
        SwitchTrafficToChampion(s);
        var next = s.Clone();
        next.Promoted = false;
        next.CandidateBuckets = 0;
        next.ShadowBuckets = 0;
        next.Mirror = false;
        next.NextAnalysisAt = null;
        next.PausedFrom = null;
        await TransitionAsync(next, phase, actor, reason, ct).ConfigureAwait(false);
        await _host.UnloadAsync(s.Candidate).ConfigureAwait(false);
        await RunPostHooksAsync(ct).ConfigureAwait(false);
    }

    private async Task TransitionAsync(RolloutState next, RolloutPhase to, string actor, string message, CancellationToken ct)
    {
        var from = _state?.RolloutId == next.RolloutId ? _state.Phase : (RolloutPhase?)null;
        next.Phase = to;
        next.Message = message;
        RolloutOutbox.Emit(next, "rollout.transition", to is RolloutPhase.Failed or RolloutPhase.RollingBack ? "warning" : "info", actor, new JsonObject
        {
            ["from"] = from?.ToString(),
            ["to"] = to.ToString(),
            ["step"] = next.StepIndex,
            ["candidate_percent"] = next.CandidateBuckets / 100.0,
            ["message"] = message,
        });
        Log.Transition(_logger, next.RolloutId, from, to, message);
        await CommitAsync(next, ct).ConfigureAwait(false);
    }

    /// <summary>Persists the state (durably) and only then applies it: traffic plan, metrics, audit outbox.</summary>
    private async Task CommitAsync(RolloutState next, CancellationToken ct)
    {
        next.Revision++;
        next.UpdatedAt = _time.GetUtcNow();
        _store.Save(next);
        Volatile.Write(ref _state, next);
        ApplyPlan(next);
        await _outbox.FlushAsync(_state, ct).ConfigureAwait(false);
    }

    private async Task<(bool Allowed, string Message)> RunHooksAsync(RolloutHookPoint point, string key, CancellationToken ct)
    {
        var messages = new List<string>();
        foreach (var hook in _options.Hooks)
        {
            if (hook.Point != point)
            {
                continue;
            }

            var status = ToStatus(_state!);
            RolloutHookResult result;
            try
            {
                result = await hook.RunAsync(new RolloutHookContext(point, status, $"{status.RolloutId}/{key}/{hook.Name}"), ct).ConfigureAwait(false);
            }
            catch (Exception ex) when (ex is not OperationCanceledException || !ct.IsCancellationRequested)
            {
                result = RolloutHookResult.Deny($"{ex.GetType().Name}: {ex.Message}");
            }

            var next = _state!.Clone();
            RolloutOutbox.Emit(next, "rollout.hook", result.Allowed ? "info" : "warning", SystemActor, new JsonObject
            {
                ["hook"] = hook.Name,
                ["point"] = point.ToString(),
                ["allowed"] = result.Allowed,
                ["message"] = result.Message,
            });
            await CommitAsync(next, ct).ConfigureAwait(false);
            if (!result.Allowed)
            {
                if (point == RolloutHookPoint.PostRollout)
                {
                    Log.PostHookFailed(_logger, status.RolloutId, hook.Name, result.Message);
                    continue;
                }

                return (false, $"{hook.Name}: {result.Message}");
            }

            messages.Add($"{hook.Name}: {result.Message}");
        }

        return (true, string.Join("; ", messages));
    }

    private async Task RunPostHooksAsync(CancellationToken ct) => _ = await RunHooksAsync(RolloutHookPoint.PostRollout, "post", ct).ConfigureAwait(false);

    private static JsonObject ToJson(IReadOnlyDictionary<string, double> evidence)
    {
        var obj = new JsonObject();
        foreach (var (k, v) in evidence)
        {
            obj[k] = double.IsFinite(v) ? v : null;
        }

        return obj;
    }

    private static RolloutStatus ToStatus(RolloutState s) => new()
    {
        RolloutId = s.RolloutId,
        Phase = s.Phase,
        Revision = s.Revision,
        Strategy = s.Strategy,
        Champion = s.Champion,
        Candidate = s.Candidate,
        Steps = s.StepList,
        StepIndex = s.StepIndex,
        CandidatePercent = s.CandidateBuckets / 100.0,
        ShadowPercent = s.ShadowBuckets / 100.0,
        ConsecutivePasses = s.ConsecutivePasses,
        Failures = s.Failures,
        PausedFrom = s.PausedFrom,
        Promoted = s.Promoted,
        StartedBy = s.StartedBy,
        StartedAt = s.StartedAt,
        UpdatedAt = s.UpdatedAt,
        NextAnalysisAt = s.NextAnalysisAt,
        AnalysesRun = s.AnalysesRun,
        Message = s.Message,
        LastAnalysis = s.LastAnalysis,
    };
}
