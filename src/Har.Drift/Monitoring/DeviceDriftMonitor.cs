using System.Diagnostics;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace Har.Drift;

/// <summary>
/// Drift monitoring per device for a serving pipeline: a bounded, evicting cache of per-device monitors, each with its own
/// current window and physics history (so the physics consistency checks run per device), and the model outputs of all
/// devices pooled for output drift. Feed it one call per prediction (<see cref="Observe"/>); scoring runs on a timer
/// (<see cref="Start"/>), off the prediction path. Thread-safe.
/// </summary>
/// <remarks>
/// <para><b>Bounds.</b> At most <see cref="DriftMonitorOptions.MaxDevices"/> devices, and a device silent for
/// <see cref="DriftMonitorOptions.DeviceIdleTimeout"/> is evicted at the next <see cref="Observe"/> of a new device or the
/// next timer tick. A new device beyond the cap takes the monitor of the least recently seen device only if that one has
/// been silent for <see cref="DriftMonitorOptions.MinimumIdleForEviction"/> and its alarm is not raised; otherwise the new
/// device is not monitored (<see cref="IsMonitored"/>; <c>har_drift_unmonitored_observations_total</c> and a warning per
/// scoring interval), so that the devices already monitored keep collecting whole windows and keep their alarms: with
/// plain least-recently-seen eviction, more devices streaming than the cap evict each other before any has a window.
/// Memory per device is <see cref="DriftMonitorOptions.WindowLength"/> × (channels × 4 + 8) bytes plus a bounded physics history.</para>
/// <para><b>Scoring.</b> Every <see cref="DriftMonitorOptions.ScoreInterval"/>, each device that has a whole window and
/// collected half a <see cref="DriftMonitorOptions.WindowLength"/> of new frames since its last scoring is scored (its
/// latest window, with its own history and sequential alarm, <see cref="DriftReport.Alarm"/>) and <see cref="Scored"/> is raised; then the pooled outputs are scored. A one-minute class mix of one
/// person is not comparable with the population mix of the reference, so output drift is judged on the last
/// <see cref="DriftMonitorOptions.OutputWindowLength"/> predictions of all devices together.</para>
/// <para><b>Metrics.</b> Per channel, the worst live device (the largest KS D) sets <c>har_drift_score</c> and its
/// companions; devices are never a label. <c>har_drift_devices</c>, <c>har_drift_device_capacity</c>, <c>har_drift_devices_flagged</c>,
/// <c>har_drift_scoring_ticks_skipped_total</c> (a scoring of the due devices outlasted the interval),
/// <c>har_drift_devices_evicted_total{reason}</c> and the <c>har_drift_output_*</c> gauges complete them.</para>
/// </remarks>
public sealed partial class DeviceDriftMonitor : IDisposable
{
    private readonly DriftScorer _scorer;
    private readonly DriftMonitorOptions _options;
    private readonly TimeProvider _time;
    private readonly ILogger _logger;
    private readonly DriftMetrics _metrics;
    private readonly int _channels;
    private readonly Lock _gate = new();
    private readonly Dictionary<string, DeviceState> _devices = new(StringComparer.Ordinal);
    private readonly LinkedList<DeviceState> _recent = new(); // most recently seen first
    private readonly int[] _alarmedByCause = new int[Enum.GetValues<DriftCause>().Length]; // by DriftCause value, under _gate
    private readonly OutputRing _outputs;
    private ITimer? _timer;
    private OutputVerdict? _latestOutputs;
    private long _unmonitoredSinceTick; // under _gate
    private readonly TickGate _ticks = new();
    private readonly DriftStateStore? _store;

    /// <summary>Creates a monitor.</summary>
    /// <param name="profile">The reference profile (with <see cref="ReferenceProfile.Outputs"/> for output drift).</param>
    /// <param name="options">Options (defaults when null).</param>
    /// <param name="timeProvider">Time source for the scoring interval and the idle timeout (system time when null).</param>
    /// <param name="logger">Logger (none when null).</param>
    /// <exception cref="ArgumentException">An option of <paramref name="options"/> is out of its range (the message names it, its value and the range; the same rules <c>AddHarDrift</c> checks at start), or <see cref="DriftMonitorOptions.StatePath"/> and <see cref="DriftMonitorOptions.StateStore"/> are both set.</exception>
    /// <exception cref="IOException"><see cref="DriftMonitorOptions.StatePath"/> can never hold the state: it is not a valid path, it is a folder, or it is under a file (the message names the path and why). A folder that cannot be created or written now (permissions, a read-only or full volume) is not thrown: it is in <see cref="StateSaveError"/> and logged, and saves are retried at every scoring tick.</exception>
    public DeviceDriftMonitor(ReferenceProfile profile, DriftMonitorOptions? options = null, TimeProvider? timeProvider = null, ILogger<DeviceDriftMonitor>? logger = null)
    {
        ArgumentNullException.ThrowIfNull(profile);
        _options = options ?? new DriftMonitorOptions();
        DriftMonitorOptionsValidator.ThrowIfInvalid(_options, nameof(options));
        var folderProblem = _options.StatePath is { Length: > 0 } path
            ? CheckStateFolder(path) // before anything is registered: nothing to undo when it throws
            : null;

        _scorer = new DriftScorer(profile, _options.Scoring);
        _time = timeProvider ?? TimeProvider.System;
        _logger = (ILogger?)logger ?? NullLogger.Instance;
        if (_options.WindowLength < profile.SegmentLength)
        {
            Log.WindowShorterThanProfile(_logger, _options.MonitorName, _options.WindowLength, profile.SegmentLength);
        }
        _metrics = new DriftMetrics(_options.MetricsRegistry, _options.MonitorName);
        _channels = profile.Channels.Count;
        _outputs = new OutputRing(_options.OutputWindowLength);
        _metrics.Capacity(_options.MaxDevices);
        _metrics.DevicesDrifted(profile.ChannelNames, new int[_channels]); // every channel at 0 from the start
        _metrics.Devices(0, 0, 0, _alarmedByCause); // and the device counts: a share read before the first tick is 0, not NaN
        _store = _options.StateStore;
        if (_options.StatePath is { Length: > 0 } statePath)
        {
            if (folderProblem is not null)
            {
                _stateSaveError = folderProblem;
                Log.StateFolderNotWritable(_logger, _options.MonitorName, statePath, folderProblem.InnerException?.Message ?? folderProblem.Message);
            }

            RestoreState(statePath);
        }

        _lastSave = _time.GetTimestamp();
    }

    /// <summary>Raised after every scoring of a device, with its report (<see cref="DriftReport.Device"/> names the device).</summary>
    public event EventHandler<DriftReport>? Scored;

    /// <summary>Gets the number of devices with a live monitor.</summary>
    public int DeviceCount
    {
        get
        {
            lock (_gate)
            {
                return _devices.Count;
            }
        }
    }

    /// <summary>Gets the latest output-drift verdict over the pooled predictions, or null before the first (or without <see cref="ReferenceProfile.Outputs"/>).</summary>
    public OutputVerdict? LatestOutputs => Volatile.Read(ref _latestOutputs);

    /// <summary>
    /// Gets the activity labels, in order, that <see cref="Observe"/>'s predicted class indexes: those of the model the
    /// profile's <see cref="ReferenceProfile.Outputs"/> were built with, or null without them. A model that lists its labels
    /// in another order must have its class indexes mapped to these by name.
    /// </summary>
    public IReadOnlyList<string>? OutputLabels => _scorer.Profile.Outputs?.Labels;

    /// <summary>Gets the reference profile the devices are scored against (its <see cref="ReferenceProfile.ChannelNames"/> are the order <see cref="Observe"/> expects a window's channels in).</summary>
    public ReferenceProfile Profile => _scorer.Profile;

    /// <summary>
    /// Feeds one prediction: the device's window and the model's output on it. Allocates nothing for a device already
    /// seen. A new device may evict idle ones, or take the monitor of the least recently seen device when that one has been
    /// silent for <see cref="DriftMonitorOptions.MinimumIdleForEviction"/> and does not alarm; with every monitor held, the
    /// new device's window is not monitored (<see cref="IsMonitored"/> is false) and only its output counts, for output drift.
    /// </summary>
    /// <param name="deviceId">The device (or stream) the window came from; a stable id, not empty.</param>
    /// <param name="window">The predicted window's raw (un-normalized) interleaved frames, in the profile's channel order: at least one frame (a model never predicts on zero frames, so an empty window is the caller's mistake and is refused; <see cref="DriftScorer.Score(ReadOnlySpan{float}, ReadOnlySpan{long})"/> of an empty window is <see cref="DriftVerdict.Insufficient"/> instead, as is <see cref="ScoreNow"/> of a device with no frames).</param>
    /// <param name="overlapFrames">
    /// Leading frames of <paramref name="window"/> already passed with this device's previous call: Length − Stride for
    /// consecutive windows of a sliding stream, 0 for independent whole windows. Only the other frames are buffered.
    /// </param>
    /// <param name="predictedClass">The predicted class index, in the order of <see cref="OutputReference.Labels"/> (the profile's model's), or <see cref="OutputReference.OtherActivity"/> for an activity those labels lack.</param>
    /// <param name="confidence">The top-class probability, in [0, 1].</param>
    /// <param name="entropy">The predictive entropy in nats.</param>
    /// <exception cref="ArgumentException"><paramref name="deviceId"/> is empty, or <paramref name="window"/> is empty or not a whole number of frames.</exception>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="overlapFrames"/> is outside 0 … the window's frames, or the prediction is outside the profile's labels, its confidence outside [0, 1] or its entropy negative or not finite.</exception>
    public void Observe(string deviceId, ReadOnlySpan<float> window, int overlapFrames, int predictedClass, float confidence, float entropy)
    {
        ArgumentException.ThrowIfNullOrEmpty(deviceId);
        if (window.IsEmpty || window.Length % _channels != 0)
        {
            throw new ArgumentException($"Got {window.Length} values for device '{deviceId}'; expected whole {_channels}-channel frames ({string.Join(' ', _scorer.Profile.ChannelNames)}), at least one.", nameof(window));
        }

        var frames = window.Length / _channels;
        if (overlapFrames < 0 || overlapFrames > frames)
        {
            throw new ArgumentOutOfRangeException(nameof(overlapFrames), overlapFrames, $"The window has {frames} frames; the overlap with the previous window must be between 0 and {frames}.");
        }

        OutputScoring.Validate(_scorer.Profile.Outputs, predictedClass, confidence, entropy);
        var now = _time.GetTimestamp();
        lock (_gate)
        {
            if (!_devices.TryGetValue(deviceId, out var state))
            {
                EvictIdle(now);
                if (_devices.Count >= _options.MaxDevices && !EvictForCapacity(now))
                {
                    // Every monitor is held by a device that keeps streaming (or alarms): this one waits for a free monitor.
                    _unmonitoredSinceTick++;
                    _metrics.Unmonitored();
                    _outputs.Add(predictedClass, confidence, entropy, null);
                    return;
                }

                state = NewDevice(deviceId, now);
                _devices.Add(deviceId, state);
                _recent.AddFirst(state.Node);
                PublishCounts();
            }
            else if (state.Node != _recent.First)
            {
                _recent.Remove(state.Node);
                _recent.AddFirst(state.Node);
            }

            state.LastSeen = now;
            state.Frames.Append(window[(overlapFrames * _channels)..], default);
            // The device's alarm as it stood when the prediction was made: a named input fault conditions the accuracy estimate.
            _outputs.Add(predictedClass, confidence, entropy, state.Latest?.Alarm);
        }
    }

    /// <summary>Gets whether a device has a live monitor: false for a device never seen, evicted, removed, or not taken because every monitor was held (<see cref="DriftMonitorOptions.MaxDevices"/>).</summary>
    /// <param name="deviceId">The device.</param>
    /// <returns>Whether its windows are monitored.</returns>
    public bool IsMonitored(string deviceId)
    {
        ArgumentNullException.ThrowIfNull(deviceId);
        lock (_gate)
        {
            return _devices.ContainsKey(deviceId);
        }
    }

    /// <summary>Starts the timer: every <see cref="DriftMonitorOptions.ScoreInterval"/>, evicts idle devices, scores each device that collected a full window, and scores the pooled outputs.</summary>
    public void Start()
    {
        lock (_gate)
        {
            _timer ??= _time.CreateTimer(static s => ((DeviceDriftMonitor)s!).Tick(), this, _options.ScoreInterval, _options.ScoreInterval);
        }
    }

    /// <summary>Scores a device's current window now (whatever it holds).</summary>
    /// <param name="deviceId">The device.</param>
    /// <returns>The report, or null when the device has no live monitor.</returns>
    public DriftReport? ScoreNow(string deviceId)
    {
        ArgumentNullException.ThrowIfNull(deviceId);
        if (_store is not null)
        {
            RestoreQueued(_store); // a device new to this process is looked up in the store before it is scored
        }

        DeviceState? state;
        lock (_gate)
        {
            _devices.TryGetValue(deviceId, out state);
        }

        if (state is null)
        {
            return null;
        }

        var report = Score(state);
        PublishDevices();
        return report;
    }

    /// <summary>Gets the latest report of a device.</summary>
    /// <param name="deviceId">The device.</param>
    /// <returns>The report, or null when the device has no live monitor or was not scored yet.</returns>
    public DriftReport? GetLatest(string deviceId)
    {
        ArgumentNullException.ThrowIfNull(deviceId);
        lock (_gate)
        {
            return _devices.TryGetValue(deviceId, out var state) ? state.Latest : null;
        }
    }

    /// <summary>
    /// Gets the latest report of every live device whose sequential alarm is raised (<see cref="DriftReport.Alarm"/>),
    /// most recently seen first: which devices the <c>har_drift_devices_alarmed</c> gauge counts, and why.
    /// </summary>
    /// <returns>The reports; empty when no device alarms.</returns>
    public IReadOnlyList<DriftReport> GetAlarmed()
    {
        var alarmed = new List<DriftReport>();
        lock (_gate)
        {
            foreach (var state in _recent)
            {
                if (state.Latest is { Alarm.Raised: true } report)
                {
                    alarmed.Add(report);
                }
            }
        }

        return alarmed;
    }

    /// <summary>Scores the pooled outputs of all devices now.</summary>
    /// <returns>The verdict, or null when the profile has no <see cref="ReferenceProfile.Outputs"/> or no prediction was observed.</returns>
    public OutputVerdict? ScoreOutputsNow()
    {
        if (_scorer.Profile.Outputs is null)
        {
            return null;
        }

        int[] classes;
        float[] confidence;
        float[] entropy;
        DriftAlarm?[] alarms;
        lock (_gate)
        {
            if (_outputs.Count == 0)
            {
                return null;
            }

            (classes, confidence, entropy, alarms) = _outputs.Snapshot();
        }

        var verdict = _scorer.ScoreOutputs(classes, confidence, entropy, alarms);
        var before = Interlocked.Exchange(ref _latestOutputs, verdict);
        _metrics.RecordOutputs(verdict);

        // Logged when the pooled verdict changes (it was a Warning at every tick while it stayed Drifted); the gauges
        // and GET /v1/drift carry it at every tick.
        if (verdict.Verdict == DriftVerdict.Drifted && before?.Verdict != DriftVerdict.Drifted)
        {
            Log.OutputsDrifted(_logger, _options.MonitorName, verdict);
        }
        else if (verdict.Verdict != DriftVerdict.Drifted && before?.Verdict == DriftVerdict.Drifted)
        {
            Log.OutputsStable(_logger, _options.MonitorName, verdict);
        }

        return verdict;
    }

    /// <summary>Forgets a device (re-mounted, recalibrated or replaced): its window, history and latest report.</summary>
    /// <param name="deviceId">The device.</param>
    /// <returns>Whether the device had a live monitor.</returns>
    public bool Remove(string deviceId)
    {
        ArgumentNullException.ThrowIfNull(deviceId);
        DeviceState? state;
        lock (_gate)
        {
            if (!_devices.Remove(deviceId, out state))
            {
                return false;
            }

            _recent.Remove(state.Node);
            PublishCounts();
            if (_store is null && _options.StatePath is { Length: > 0 })
            {
                _removedSinceSnapshot.Enqueue(deviceId); // journaled at the end of the tick, as an alarm change is
            }

            StateChanged(urgent: true);
        }

        if (_store is not null)
        {
            Forget(state);
        }

        return true;
    }

    /// <summary>Stops the timer and saves the drift state (<see cref="DriftMonitorOptions.StatePath"/>, <see cref="DriftMonitorOptions.StateStore"/>). A save that fails is not thrown: <see cref="StateSaveError"/> holds its error.</summary>
    public void Dispose()
    {
        lock (_gate)
        {
            _timer?.Dispose();
            _timer = null;
        }

        Checkpoint(force: true);
        _metrics.Dispose();
    }

    /// <summary>One timer tick: evict idle devices, score the due ones, score the pooled outputs.</summary>
    internal void Tick()
    {
        // Many devices on a loaded host can take longer to score than the interval (found from outside: 900 devices at a
        // 3-second interval, 1,291 scorings of 900 windows, and a healthy device alarmed on a failure worth 1.12 counted
        // twice against h 1.5): the next tick is left to the one still scoring.
        if (!_ticks.TryRun(TickOnce))
        {
            _metrics.TickSkipped();
            Log.TickSkipped(_logger, _options.MonitorName, _options.ScoreInterval);
        }
    }

    private void TickOnce()
    {
        List<DeviceState> due = [];
        long unmonitored;
        lock (_gate)
        {
            EvictIdle(_time.GetTimestamp());
        }

        if (_store is not null)
        {
            // Devices new to this process are looked up (in one batch) before any is scored.
            RestoreQueued(_store);
        }

        lock (_gate)
        {
            unmonitored = _unmonitoredSinceTick;
            _unmonitoredSinceTick = 0;
            foreach (var state in _recent)
            {
                // Every half window (once a whole window arrived): the step the alarm's thresholds were calibrated with.
                // A device whose lookup in the state store has not finished waits for it.
                if (!state.RestorePending && state.Frames.Written >= _options.WindowLength && state.Frames.Written - state.ScoredUpTo >= Math.Max(1, _options.WindowLength / 2))
                {
                    due.Add(state);
                }
            }
        }

        if (unmonitored > 0)
        {
            Log.DevicesUnmonitored(_logger, _options.MonitorName, unmonitored, _options.MaxDevices, _options.MinimumIdleForEviction);
        }

        foreach (var state in due)
        {
            Score(state);
        }

        ScoreOutputsNow();
        PublishDevices();
        Checkpoint();
    }

    private DriftReport Score(DeviceState state)
    {
        float[] window;
        long[] stamps;
        long start;
        lock (_gate)
        {
            (window, stamps, start) = state.Frames.Snapshot();
            state.ScoredUpTo = state.Frames.Written;
        }

        DriftReport report;
        TimeSpan elapsed;
        bool alarmChanged;
        DriftAlarm? before;
        lock (state.Scoring)
        {
            var began = Stopwatch.GetTimestamp();
            before = state.Latest?.Alarm;
            report = _scorer.Score(window, state.History, start, stamps, null, state.Id);
            elapsed = Stopwatch.GetElapsedTime(began);
            state.Latest = report;
            alarmChanged = (before?.Raised ?? false) != (report.Alarm?.Raised ?? false)
                || (report.Alarm is { Raised: true } now && before is { } was && (was.Cause != now.Cause || !was.Channels.SequenceEqual(now.Channels, StringComparer.Ordinal)));
        }

        StateChanged(urgent: alarmChanged);
        state.Changed(urgent: alarmChanged);

        _metrics.Scored(report, elapsed);

        // A device's alarm is the decision (held to the false-alarm budget) and is logged when it changes; each window's
        // drifted channels and findings are the evidence it weighs, at Debug: at Warning they were 98 % of the service's
        // log, repeated every scoring of every device while a condition lasted.
        MonitorLog.Report(_logger, _options.MonitorName, report);
        if (alarmChanged)
        {
            switch ((before?.Raised ?? false, report.Alarm))
            {
                case (false, { Raised: true } raised):
                    Log.DeviceAlarmRaised(_logger, _options.MonitorName, state.Id, raised);
                    break;
                case (true, { Raised: true } renamed):
                    Log.DeviceAlarmRenamed(_logger, _options.MonitorName, state.Id, renamed);
                    break;
                default:
                    Log.DeviceAlarmLowered(_logger, _options.MonitorName, state.Id, report.Alarm);
                    break;
            }
        }

        Scored?.Invoke(this, report);
        return report;
    }

    /// <summary>
    /// Publishes the device gauges, per channel the number of live devices whose latest report has it Drifted, and per
    /// channel the worst live device's channel verdict (the device with the largest KS D: which device that is changes
    /// from one tick to the next, so its verdict is no fleet-wide signal; the count is).
    /// </summary>
    private void PublishDevices()
    {
        var worst = new ChannelVerdict?[_channels];
        lock (_gate)
        {
            foreach (var state in _recent)
            {
                if (state.Latest is not { } r)
                {
                    continue;
                }

                for (var c = 0; c < _channels && c < r.Channels.Count; c++)
                {
                    if (worst[c] is null || r.Channels[c].Score > worst[c]!.Score)
                    {
                        worst[c] = r.Channels[c];
                    }
                }
            }

            PublishCounts();
        }

        foreach (var c in worst)
        {
            if (c is not null)
            {
                _metrics.RecordChannel(c);
            }
        }
    }

    /// <summary>
    /// Publishes the live, flagged and alarmed device counts, and per channel the devices whose latest report has it
    /// Drifted (under <see cref="_gate"/>).
    /// </summary>
    private void PublishCounts()
    {
        var alarmed = 0;
        Array.Clear(_alarmedByCause);
        var drifted = new int[_channels];
        foreach (var state in _recent)
        {
            if (state.Latest is not { } r)
            {
                continue;
            }

            if (r.Alarm is { Raised: true } alarm)
            {
                alarmed++;
                _alarmedByCause[(int)alarm.Cause]++;
            }

            for (var c = 0; c < _channels && c < r.Channels.Count; c++)
            {
                drifted[c] += r.Channels[c].Verdict == DriftVerdict.Drifted ? 1 : 0;
            }
        }

        _metrics.Devices(_devices.Count, FlaggedCount(), alarmed, _alarmedByCause);
        _metrics.DevicesDrifted(_scorer.Profile.ChannelNames, drifted);
    }

    private int FlaggedCount()
    {
        var flagged = 0;
        foreach (var state in _recent)
        {
            flagged += state.Latest is { Flagged: true } ? 1 : 0;
        }

        return flagged;
    }

    private void EvictIdle(long now)
    {
        while (_recent.Last is { } last && _time.GetElapsedTime(last.Value.LastSeen, now) >= _options.DeviceIdleTimeout)
        {
            Evict(last.Value, "idle");
        }
    }

    /// <summary>
    /// Frees a monitor for a new device (under <see cref="_gate"/>): the least recently seen device silent for
    /// <see cref="DriftMonitorOptions.MinimumIdleForEviction"/> whose alarm is not raised. False when every device was seen
    /// more recently or alarms.
    /// </summary>
    private bool EvictForCapacity(long now)
    {
        for (var node = _recent.Last; node is not null; node = node.Previous)
        {
            var state = node.Value;
            if (_time.GetElapsedTime(state.LastSeen, now) < _options.MinimumIdleForEviction)
            {
                return false; // the devices before it in the list were seen even more recently
            }

            if (state.Latest?.Alarm is not { Raised: true })
            {
                Evict(state, "capacity");
                return true;
            }
        }

        return false;
    }

    private void Evict(DeviceState state, string reason)
    {
        _devices.Remove(state.Id);
        _recent.Remove(state.Node);
        _metrics.Evicted(reason);
        StateChanged();
        if (_store is not null && state.Dirty && !state.RestorePending)
        {
            QueueUnsaved(state); // saved at the next tick: its record is what lets it come back, here or on another process
        }

        Log.DeviceEvicted(_logger, _options.MonitorName, state.Id, reason);
    }
}
