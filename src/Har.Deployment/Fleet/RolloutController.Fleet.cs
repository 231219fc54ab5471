using Npgsql;

namespace Har.Deployment;

/// <summary>
/// The controller in a fleet (<see cref="RolloutControllerOptions.ConnectionString"/>): every replica follows the shared
/// state (LISTEN/NOTIFY, polling as the fallback) and publishes its traffic plan; only the holder of the lease analyses
/// and applies steps. Every write is a compare-and-set on the state's revision, so a replica whose lease lapsed (paused,
/// partitioned) can never overwrite its successor's work: its write is refused and it re-reads. Only the leader appends
/// the transactional outbox's audit events (a follower's command leaves them in the state it writes; the leader appends
/// those the log does not hold yet when it reads that state), so each event is written once.
/// </summary>
public sealed partial class RolloutController
{
    private readonly FleetStore? _fleet;

    /// <summary>The last forwarded-label row this replica read (−1: none yet; the first read skips what is already there).</summary>
    private long _labelsSeen = -1;

    /// <summary>The lease term in which this replica last imported the fleet's labelled windows (a new term logs the takeover's import).</summary>
    private long _windowsTerm;
    private long _term;
    private long _leaseValidUntil;
    private int _takeover;

    /// <summary>
    /// Gets whether this controller drives rollouts: always in one process; in a fleet, while it holds the controller
    /// lease (renewed within three quarters of <see cref="RolloutControllerOptions.LeaseDuration"/>).
    /// </summary>
    public bool IsLeader => _fleet is null || (Volatile.Read(ref _term) != 0 && _time.GetTimestamp() < Volatile.Read(ref _leaseValidUntil));

    /// <summary>Gets this replica's name in the lease (diagnostics), or <see langword="null"/> in one process.</summary>
    internal string? ReplicaName => _fleet?.Holder;

    private async Task InitializeFleetAsync(CancellationToken ct)
    {
        // Counted among the live replicas from the start (the lease loop renews it).
        _fleet!.Heartbeat(_options.LeaseDuration);

        // Every window labelled and every label received from now on reaches the fleet: before, only those after this
        // replica's first reconciliation did, and a label that came earlier joined this replica's windows alone.
        _serving.Feedback?.KeepForShipping(true);
        _serving.Feedback?.KeepForForwarding(true);

        // Audit events still in the state's outbox are appended by the leader (RecoverAsync when it reads the state).
        _state = _fleet.Load();
        if (_state is null)
        {
            // Warm the state's JSON round trip now, so the first change another replica writes is followed in milliseconds
            // (on a loaded machine, building the serializer's metadata on first use took about a second).
            _ = new RolloutState { RolloutId = "warm-up", Strategy = "warm-up", Champion = "0.0.0", Candidate = "0.0.0", StartedBy = "warm-up", Steps = [RolloutState.StepRecord.From(RolloutStep.Finish())] }.Clone();
        }
        await FollowAsync(previous: null, ct).ConfigureAwait(false);
    }

    /// <summary>
    /// Reads the shared state when it changed (or <paramref name="force"/>, or on a takeover) and applies it: loads what it
    /// serves, publishes its traffic plan, unloads what it no longer serves. A new leader first recovers the outbox.
    /// </summary>
    private async Task SyncAsync(bool force, CancellationToken ct)
    {
        var fleet = _fleet!;
        var (revision, current, currentRevision) = fleet.ReadHead();
        var pointer = _registry.SharedCurrent!;
        var pointerChanged = current != pointer.Version;
        pointer.Update(current, currentRevision);
        var takeover = IsLeader && Interlocked.Exchange(ref _takeover, 0) == 1;
        var previous = _state;
        if (!force && !takeover && revision == (previous?.Revision ?? 0) && !(previous is null && pointerChanged))
        {
            return;
        }

        var loaded = revision == 0 ? null : fleet.Load();
        if (loaded is not null && takeover)
        {
            Log.Resumed(_logger, loaded.RolloutId, loaded.Phase, loaded.StepIndex, loaded.Revision);
        }

        if (loaded is not null && IsLeader)
        {
            // The leader alone appends the outbox's audit events: those a follower's command (or a dead leader) left in the
            // state and the log does not hold yet, once each (by sequence number). A follower carries them forward.
            await _outbox.RecoverAsync(loaded, ct).ConfigureAwait(false);
        }

        Volatile.Write(ref _state, loaded);
        await FollowAsync(previous, ct).ConfigureAwait(false);
        if (takeover && IsLeader)
        {
            // The previous leader's observations of a rollback's verification interval left with it.
            await RestartCutRollbackVerificationAsync(ct).ConfigureAwait(false);
        }
    }

    private async Task FollowAsync(RolloutState? previous, CancellationToken ct)
    {
        var s = _state;
        if (await EnsureResidentAsync(ct).ConfigureAwait(false) is { } failure && s is not null)
        {
            if (IsLeader)
            {
                await FailCandidateAsync(failure, ct).ConfigureAwait(false);
                return;
            }

            // A follower that cannot load the candidate serves the champion; the leader decides the rollout's fate.
            Log.Error(_logger, s.RolloutId, $"this replica serves {s.Champion} only: {failure}", new InvalidOperationException(failure));
            _serving.Publish(TrafficPlan.Single(s.Champion, s.Revision));
            return;
        }

        ApplyPlan(s);
        if (s is { Phase: RolloutPhase.Pending } && !IsLeader && !_host.IsLoaded(s.Candidate))
        {
            // While the leader loads the candidate, so do the followers: its first weighted plan then waits on no load.
            try
            {
                await LoadServableAsync(s.Candidate, "prepare candidate", ct).ConfigureAwait(false);
            }
            catch (Exception ex) when (IsCandidateFailure(ex, ct))
            {
                Log.Error(_logger, s.RolloutId, $"this replica could not prepare candidate {s.Candidate}; the leader decides the rollout", ex);
            }
        }

        if (previous is null)
        {
            return;
        }

        var needed = NeededVersions(s);
        foreach (var version in (string[])[previous.Champion, previous.Candidate])
        {
            if (!needed.Contains(version) && _host.IsLoaded(version))
            {
                await _host.UnloadAsync(version).ConfigureAwait(false);
            }
        }
    }

    /// <summary>
    /// Observations from every replica reach the leader's analysis: a follower ships what it recorded during a rollout
    /// (and drops what it recorded outside one); the leader sums every replica's into its own. Returns whether this
    /// replica leads (and so drives the rollout).
    /// </summary>
    private bool ExchangeObservations()
    {
        ExchangeLabels();
        ExchangeLabelledWindows();
        var s = _state;
        var active = s is not null && s.Phase is RolloutPhase.Progressing or RolloutPhase.Paused or RolloutPhase.AwaitingApproval;
        if (IsLeader)
        {
            if (active)
            {
                foreach (var delta in _fleet!.TakeObservations(s!.RolloutId))
                {
                    Observations.Merge(delta);
                    if (delta.Labels is { Count: > 0 } labels)
                    {
                        // A replica of an earlier release (a rolling upgrade) ships its labelled windows here instead: they
                        // count, and this replica writes them to the fleet's table as its own.
                        _serving.Feedback?.Import(labels, ship: true);
                    }
                }
            }

            return true;
        }

        var drained = Observations.Drain();
        if (active && !drained.IsEmpty())
        {
            _fleet!.WriteObservations(s!.RolloutId, drained);
        }

        return false;
    }

    /// <summary>
    /// Feedback labels reach the replica that holds their stream's windows whichever replica received them: each replica
    /// forwards the labels it received through the database and applies the others' (a label joins only windows a replica
    /// holds, each window once). Labels not written (the database does not answer) wait for the next round.
    /// </summary>
    private void ExchangeLabels()
    {
        if (_serving.Feedback is not { } feedback)
        {
            return;
        }

        feedback.KeepForForwarding(true);
        var received = feedback.DrainForwarded();
        if (received.Count > 0)
        {
            try
            {
                _fleet!.WriteLabels(received);
            }
            catch (IOException)
            {
                feedback.Requeue(received);
                throw;
            }
        }

        var (last, forwarded) = _fleet!.ReadLabels(_labelsSeen);
        _labelsSeen = last;
        if (forwarded.Count > 0)
        {
            feedback.ApplyForwarded(forwarded);
        }
    }

    /// <summary>
    /// The windows labelled anywhere in the fleet reach the leader's accuracy gate and outlive any replica: every replica
    /// writes those it labelled to the fleet's table; the leader adds the rows the others wrote since its last round, and
    /// every row kept at its first round as leader (a takeover), so a new leader judges the labels its predecessor held.
    /// Windows not written (the database does not answer) wait for the next round.
    /// </summary>
    private void ExchangeLabelledWindows()
    {
        if (_serving.Feedback is not { } feedback)
        {
            return;
        }

        var fleet = _fleet!;
        feedback.WriteLabelledWindows(fleet);
        if (!IsLeader)
        {
            return;
        }

        var (added, skipped) = feedback.ImportLabelledWindows(fleet);
        var term = Volatile.Read(ref _term);
        if (skipped > 0 || (added > 0 && term != _windowsTerm))
        {
            Log.FeedbackRestored(_logger, added, fleet.LabelledWindowsPath, skipped);
        }

        _windowsTerm = term;
    }

    /// <summary>The loop of a replica: the lease, the change notifications, and reconciliation (following always, driving when leading).</summary>
    private async Task RunFleetAsync(CancellationToken cancellationToken)
    {
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        var lease = Task.Run(() => LeaseLoopAsync(stop.Token), CancellationToken.None);
        var listen = Task.Run(() => ListenLoopAsync(stop.Token), CancellationToken.None);
        try
        {
            while (!cancellationToken.IsCancellationRequested)
            {
                var wake = Volatile.Read(ref _wake).Task;
                TimeSpan delay;
                try
                {
                    await ReconcileAsync(cancellationToken).ConfigureAwait(false);
                    _metrics.SetLeader(IsLeader);
                    if (Volatile.Read(ref _fault) is not null)
                    {
                        Volatile.Write(ref _fault, null);
                        _metrics.SetLoopFaulted(false);
                        Log.LoopRecovered(_logger);
                    }

                    delay = IsLeader ? NextDelay() : _options.PlanPollInterval;
                    if (delay > _options.PlanPollInterval)
                    {
                        delay = _options.PlanPollInterval;
                    }
                }
                catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
                {
                    return;
                }
#pragma warning disable CA1031 // the loop outlives any failure (an unreachable database included); logged, exposed and retried
                catch (Exception ex)
#pragma warning restore CA1031
                {
                    Volatile.Write(ref _fault, $"{ex.GetType().Name}: {ex.Message}");
                    _metrics.SetLoopFaulted(true);
                    delay = _options.PlanPollInterval < _options.FaultRetryInterval ? _options.PlanPollInterval : _options.FaultRetryInterval;
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
        finally
        {
            await stop.CancelAsync().ConfigureAwait(false);
            await Task.WhenAll(lease, listen).ConfigureAwait(false);
            ReleaseLease();
            _metrics.SetLeader(false);
        }
    }

    /// <summary>
    /// Publishes this replica's clock minus the database's, and warns while it is more than <see cref="ClockOffsetWarning"/>
    /// (beyond the round trip's uncertainty): when it first does, and every 10 minutes while it lasts. Found from outside:
    /// a leader 5 minutes behind gave a rollout a negative duration and audit timestamps that went backwards, so time
    /// filters missed its events; the lease, on the database's clock, held. Nothing else said the clocks disagreed.
    /// </summary>
    private void CheckClock(TimeSpan offset, TimeSpan roundTrip)
    {
        _metrics.SetClockOffset(offset);
        var beyond = offset.Duration() - (roundTrip / 2) > ClockOffsetWarning;
        var now = _time.GetTimestamp();
        if (beyond && (_clockWarnedAt == 0 || _time.GetElapsedTime(_clockWarnedAt, now) >= TimeSpan.FromMinutes(10)))
        {
            _clockWarnedAt = now;
            Log.ClockOffset(_logger, _fleet!.Holder, offset.TotalSeconds, ClockOffsetWarning.TotalSeconds);
        }
        else if (!beyond)
        {
            _clockWarnedAt = 0;
        }
    }

    /// <summary>The clock offset from the database past which a replica warns.</summary>
    internal static readonly TimeSpan ClockOffsetWarning = TimeSpan.FromSeconds(2);

    private long _clockWarnedAt;

    /// <summary>Takes or renews the lease every quarter of its duration; a new term means a takeover (reload, recover the outbox, drive).</summary>
    private async Task LeaseLoopAsync(CancellationToken ct)
    {
        var duration = _options.LeaseDuration;
        var validFor = (long)(duration.TotalSeconds * 0.75 * _time.TimestampFrequency);
        while (!ct.IsCancellationRequested)
        {
            var started = _time.GetTimestamp();
            try
            {
                var term = _fleet!.TryAcquireLease(duration);
                var held = Volatile.Read(ref _term);
                if (term is { } t)
                {
                    Volatile.Write(ref _leaseValidUntil, started + validFor);
                    if (t != held || !IsLeaderAt(started))
                    {
                        Volatile.Write(ref _term, t);
                        Interlocked.Exchange(ref _takeover, 1);
                        Log.BecameLeader(_logger, _fleet.Holder, t);
                        Wake();
                    }
                }
                else if (held != 0)
                {
                    Volatile.Write(ref _term, 0);
                    Log.LostLeadership(_logger, _fleet.Holder, held);
                }
            }
#pragma warning disable CA1031 // an unreachable database: the lease lapses on its own (IsLeader turns false); retried
            catch (Exception ex) when (ex is not OperationCanceledException)
#pragma warning restore CA1031
            {
                Log.LeaseFailed(_logger, _fleet!.Holder, ex);
            }

            try
            {
                // Every replica, leader or not, says it is alive for one lease duration (the promotion's replica count).
                var before = _time.GetUtcNow();
                var database = _fleet.Heartbeat(duration);
                var after = _time.GetUtcNow();
                if (database != DateTimeOffset.MinValue)
                {
                    CheckClock(before + ((after - before) / 2) - database, after - before);
                }
            }
#pragma warning disable CA1031 // an unreachable database: the heartbeat expires on its own; retried with the lease
            catch (Exception ex) when (ex is not OperationCanceledException)
#pragma warning restore CA1031
            {
                Log.HeartbeatFailed(_logger, _fleet.Holder, ex);
            }

            try
            {
                await Task.Delay(duration / 4, _time, ct).ConfigureAwait(false);
            }
            catch (OperationCanceledException)
            {
                return;
            }
        }
    }

    private bool IsLeaderAt(long timestamp) => Volatile.Read(ref _term) != 0 && timestamp < Volatile.Read(ref _leaseValidUntil);

    /// <summary>LISTENs for state changes on a dedicated connection and wakes the loop on each; reconnects after a failure (polling covers the gap).</summary>
    private async Task ListenLoopAsync(CancellationToken ct)
    {
        while (!ct.IsCancellationRequested)
        {
            try
            {
                await using var connection = await _fleet!.OpenConnectionAsync(ct).ConfigureAwait(false);
                connection.Notification += (_, _) => Wake();
                await using (var listen = new NpgsqlCommand("LISTEN " + FleetStore.Channel, connection))
                {
                    await listen.ExecuteNonQueryAsync(ct).ConfigureAwait(false);
                }

                Wake(); // catch up on what changed while nobody listened
                while (true)
                {
                    await connection.WaitAsync(ct).ConfigureAwait(false);
                }
            }
            catch (OperationCanceledException) when (ct.IsCancellationRequested)
            {
                return;
            }
#pragma warning disable CA1031 // a lost connection: reconnect; the poll keeps the replica in step meanwhile
            catch (Exception ex)
#pragma warning restore CA1031
            {
                Log.ListenFailed(_logger, ex);
            }

            try
            {
                await Task.Delay(_options.PlanPollInterval, _time, ct).ConfigureAwait(false);
            }
            catch (OperationCanceledException)
            {
                return;
            }
        }
    }

    private void ReleaseLease()
    {
        if (_fleet is null || Interlocked.Exchange(ref _term, 0) == 0)
        {
            return;
        }

        try
        {
            _fleet.ReleaseLease();
        }
        catch (IOException ex)
        {
            // It expires on its own.
            Log.LeaseFailed(_logger, _fleet.Holder, ex);
        }
    }

    private void DisposeFleet()
    {
        if (_fleet is not null && _serving.Feedback is { } feedback)
        {
            try
            {
                // A clean shutdown writes the windows labelled since the last round, so the next leader counts them.
                feedback.WriteLabelledWindows(_fleet);
            }
            catch (IOException ex)
            {
                Log.FeedbackNotWritten(_logger, _fleet.Holder, _fleet.LabelledWindowsPath, ex);
            }
        }

        ReleaseLease();
        if (_fleet is not null)
        {
            try
            {
                _fleet.Leave();
            }
            catch (IOException ex)
            {
                // Its heartbeat expires on its own.
                Log.LeaseFailed(_logger, _fleet.Holder, ex);
            }
        }

        _fleet?.Dispose();
    }
}
