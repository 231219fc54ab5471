using System.Text.Json.Nodes;
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
    internal const string SystemActor = "har-deployment";

    private readonly ModelRegistry _registry;
    private readonly RolloutControllerOptions _options;
    private readonly TimeProvider _time;
    private readonly ILogger _logger;
    private readonly IRolloutStateStore _store;
    private readonly IServingControl _serving;
    private readonly RolloutOutbox _outbox;
    private readonly IDeploymentAuditSink? _audit;
    private readonly RolloutAnalyzer _analyzer;
    private FailingSamples? _failing;
    private readonly DeploymentMetrics _metrics;
    private readonly Dictionary<string, IRolloutStrategy> _strategies;
    private readonly SemaphoreSlim _gate = new(1, 1);
    private readonly IReadOnlyList<string> _labels;
    private TaskCompletionSource _wake = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private RolloutState? _state;
    private string? _fault;
    private int _disposed;

    private RolloutController(ModelRegistry registry, RolloutControllerOptions options, IServingControl serving, IDeploymentAuditSink? audit, IClassMixTest classMix, ILoggerFactory? loggerFactory, TimeProvider time, FleetStore? fleet)
    {
        _registry = registry;
        _options = options;
        _time = time;
        _logger = (ILogger?)loggerFactory?.CreateLogger<RolloutController>() ?? NullLogger.Instance;
        _fleet = fleet;
        _store = fleet ?? options.StateStore ?? new RolloutStateStore(options.StateDirectory ?? Path.Combine(registry.Root, ".rollout"));
        _outbox = new RolloutOutbox(audit, time);
        _audit = audit;
        _serving = serving;
        for (var i = 0; i < options.SmokeTestWindows.Count; i++)
        {
            // The pipeline's windows: each version reads its own last frames of them (see ServingOptions.ContextFrames).
            if (options.SmokeTestWindows[i]?.Length != serving.Geometry.WindowValues)
            {
                throw new ArgumentException($"RolloutControllerOptions.SmokeTestWindows[{i}] holds {options.SmokeTestWindows[i]?.Length ?? 0} values; the serving pipeline serves {serving.Geometry}, so expected {serving.Geometry.WindowValues} values per window.", nameof(options));
            }
        }

        serving.Models.SetSmokeWindows([.. options.SmokeTestWindows], options.SmokeTestMinAgreement);
        _analyzer = new RolloutAnalyzer(options.Analysis, classMix, serving.Feedback);
        _metrics = new DeploymentMetrics(options.MetricsRegistry);
        if (fleet is not null)
        {
            _metrics.TrackLeader(this, static c => Volatile.Read(ref c._disposed) == 0 && c.IsLeader);
        }
        _strategies = new Dictionary<string, IRolloutStrategy>(StringComparer.Ordinal)
        {
            [RolloutStrategyNames.Recreate] = new RecreateStrategy(options.BuiltInStrategies),
            [RolloutStrategyNames.BlueGreen] = new BlueGreenStrategy(options.BuiltInStrategies),
            [RolloutStrategyNames.Canary] = new CanaryStrategy(options.BuiltInStrategies),
            [RolloutStrategyNames.Shadow] = new ShadowStrategy(options.BuiltInStrategies),
        };
        foreach (var strategy in options.Strategies)
        {
            _strategies[strategy.Name] = strategy;
        }

        _labels = [];

        // A retirement through the registry must not take a version this controller's rollout still needs.
        _stateSource = () => Volatile.Read(ref _state);
        registry.RolloutStateSource = _stateSource;
    }

    private readonly Func<RolloutState?> _stateSource;

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
    internal string StatePath => _store.StatePath;

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
    /// <exception cref="ArgumentException">A window of <see cref="RolloutControllerOptions.SmokeTestWindows"/> is not one of the pipeline's (<see cref="WindowGeometry.WindowValues"/> values).</exception>
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
        var fleet = options.ConnectionString is { Length: > 0 } connectionString ? FleetStore.Open(connectionString) : null;
        try
        {
            if (fleet is not null)
            {
                registry.UseSharedCurrent(fleet);
                registry.UseSharedModels(fleet);
            }

            var controller = new RolloutController(registry, options, serving, audit, classMix, loggerFactory, time, fleet);
            await controller.InitializeAsync(cancellationToken).ConfigureAwait(false);
            return controller;
        }
        catch
        {
            fleet?.Dispose();
            throw;
        }
    }

    /// <summary>Reads the persisted status of the rollout in <paramref name="stateDirectory"/> without opening a controller (no models are loaded).</summary>
    /// <param name="stateDirectory">The controller's state folder (by default <c>.rollout</c> inside the registry).</param>
    /// <returns>The status, or <see langword="null"/> when there has been no rollout.</returns>
    internal static RolloutStatus? ReadStatus(string stateDirectory)
    {
        var state = new RolloutStateStore(stateDirectory).Load();
        return state is null ? null : ToStatus(state);
    }

    /// <summary>Reads the status of the fleet's rollout in its database (<c>har rollout status --connection</c>), or <see langword="null"/> when there has been none.</summary>
    internal static RolloutStatus? ReadStatus(FleetStore store) => store.Load() is { } state ? ToStatus(state) : null;

    /// <summary>Executes an operator command.</summary>
    /// <param name="command">The command.</param>
    /// <param name="cancellationToken">Cancels the command (the state stays consistent).</param>
    /// <returns>The status after the command and everything it triggered immediately.</returns>
    /// <exception cref="RolloutConflictException">The command's expected phase or revision is stale.</exception>
    /// <exception cref="RolloutCommandRejectedException">The command is not allowed in the current phase.</exception>
    /// <exception cref="ArgumentException">A text of the command is too long (an actor over 256 characters, a reason or incident text over 8,192) or its rollout id is not a plain name.</exception>
    /// <exception cref="ObjectDisposedException">The controller was disposed.</exception>
    public async Task<RolloutStatus> ExecuteAsync(RolloutCommand command, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(command);
        command.Validate();
        await EnterAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            if (_fleet is not null)
            {
                await SyncAsync(force: false, cancellationToken).ConfigureAwait(false);
            }

            await ExecuteCoreAsync(command, cancellationToken).ConfigureAwait(false);
            return ToStatus(_state!);
        }
        catch (RolloutStateConflictException ex)
        {
            // Lost a compare-and-set to another replica: nothing of this write was stored; re-read, never overwrite.
            await SyncAsync(force: true, cancellationToken).ConfigureAwait(false);
            throw new RolloutConflictException($"Command {command.Kind} by {command.Actor} was not (fully) applied: {ex.Message} The rollout is now at revision {_state?.Revision ?? 0} (phase {_state?.Phase.ToString() ?? "none"}); re-read the status and retry.");
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
    /// <exception cref="ObjectDisposedException">The controller was disposed.</exception>
    public async Task<RolloutStatus?> ReconcileAsync(CancellationToken cancellationToken = default)
    {
        await EnterAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            if (_fleet is not null)
            {
                // Every replica follows the shared state; only the leader drives it.
                await SyncAsync(force: false, cancellationToken).ConfigureAwait(false);
                if (!ExchangeObservations())
                {
                    return Status;
                }
            }

            _serving.Feedback?.SyncJournal();
            if (_state is null)
            {
                return null;
            }

            await ReconcileCoreAsync(cancellationToken).ConfigureAwait(false);
            return ToStatus(_state);
        }
        catch (RolloutStateConflictException ex)
        {
            // Another replica changed the state first (this one's lease lapsed): re-read it, never overwrite.
            Log.StateConflict(_logger, ex.Message);
            await SyncAsync(force: true, cancellationToken).ConfigureAwait(false);
            return Status;
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
        if (_fleet is not null)
        {
            await RunFleetAsync(cancellationToken).ConfigureAwait(false);
            return;
        }

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

        // Wait for a reconciliation in progress, so no command runs on a disposed pipeline. The gate is released, not
        // disposed: a command or reconciliation that was already waiting for it then enters, sees the controller disposed
        // and throws ObjectDisposedException, where a disposed semaphore left it waiting forever.
        await _gate.WaitAsync().ConfigureAwait(false);
        try
        {
            _serving.Feedback?.CloseJournal();
            DisposeFleet();
            if (_registry.RolloutStateSource == _stateSource)
            {
                _registry.RolloutStateSource = null;
            }
        }
        finally
        {
            _gate.Release();
        }
    }

    /// <summary>Takes the gate that serialises commands and reconciliations, refusing once the controller is disposed.</summary>
    /// <exception cref="ObjectDisposedException">The controller was disposed (before the call, or while it waited).</exception>
    private async Task EnterAsync(CancellationToken cancellationToken)
    {
        ObjectDisposedException.ThrowIf(Volatile.Read(ref _disposed) != 0, this);
        await _gate.WaitAsync(cancellationToken).ConfigureAwait(false);
        if (Volatile.Read(ref _disposed) != 0)
        {
            _gate.Release();
            throw new ObjectDisposedException(GetType().FullName, "The rollout controller was disposed while the call waited for the command in progress; open a new one (RolloutController.OpenAsync).");
        }
    }

    internal DateTimeOffset? NextDueAt()
    {
        var s = Volatile.Read(ref _state);
        if (s is { Phase: RolloutPhase.RolledBack, Rollback.VerifyDueAt: { } verifyAt })
        {
            return verifyAt;
        }

        if (s is null || !(s.Phase is RolloutPhase.Progressing or RolloutPhase.Pending || (s.Phase == RolloutPhase.Paused && s.WaitingForData)))
        {
            return null;
        }

        if (s.Phase == RolloutPhase.Pending)
        {
            return s.NextAnalysisAt; // a hook holds the rollout until then
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
        _metrics.SetLeader(IsLeader);
        if (_fleet is not null)
        {
            await InitializeFleetAsync(ct).ConfigureAwait(false);
            return;
        }

        var state = _store.Load();
        _state = state;
        if (_store is RolloutStateStore files && _serving.Feedback is { JournalPath: null } feedback)
        {
            // The accuracy gate's labelled windows outlive the process, as the rollout state does.
            var journal = Path.Combine(files.Directory, FeedbackJournal.FileName);
            var (restored, skipped) = feedback.AttachJournal(journal);
            if (feedback.DamagedJournalCopy is { } copy)
            {
                // Labels cannot be collected again: damage is a Warning, with the file as it was kept beside it.
                Log.FeedbackJournalDamaged(_logger, journal, skipped, copy, restored);
            }
            else if (restored + skipped > 0)
            {
                Log.FeedbackRestored(_logger, restored, journal, skipped);
            }
        }

        // The state file and the pointer are checked against the log (file state; the log is read once, and again only
        // after the outbox appended what a crash left in it).
        var stateFiles = _audit is null ? null : _store as RolloutStateStore;
        var logged = stateFiles is null ? null : await _audit!.GetLatestRolloutAsync(_registry.RegistryId, ct).ConfigureAwait(false);
        string? behindLog = null;
        if (stateFiles is not null && state is not null && await StateBehindLogAsync(state, logged, ct).ConfigureAwait(false) is { } behind)
        {
            behindLog = $"{behind}: it was set aside as {SetStateAside(stateFiles)}";
            Log.StateBehindLog(_logger, state.RolloutId, behindLog);
            _state = state = null;
        }

        if (state is not null)
        {
            Log.Resumed(_logger, state.RolloutId, state.Phase, state.StepIndex, state.Revision);
            var pending = state.Outbox.Count > 0;
            await _outbox.RecoverAsync(state, ct).ConfigureAwait(false);
            if (stateFiles is not null && pending)
            {
                logged = await _audit!.GetLatestRolloutAsync(_registry.RegistryId, ct).ConfigureAwait(false);
            }
        }
        else if (stateFiles is not null)
        {
            logged = await EndLostRolloutAsync(logged, behindLog, ct).ConfigureAwait(false);
        }

        if (stateFiles is not null && (state is null || state.Phase.IsTerminal()))
        {
            await AlignCurrentWithLogAsync(logged, ct).ConfigureAwait(false);
        }

        var failure = await EnsureResidentAsync(ct).ConfigureAwait(false);
        ApplyPlan(state);
        if (failure is not null)
        {
            // A candidate that no longer loads (or crashed the last process while loading) ends its rollout; the champion serves.
            await FailCandidateAsync(failure, ct).ConfigureAwait(false);
            return;
        }

        await RestartCutRollbackVerificationAsync(ct).ConfigureAwait(false);
    }

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
        WaitingForData = s.WaitingForData,
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
