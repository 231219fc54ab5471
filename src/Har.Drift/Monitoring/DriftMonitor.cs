using System.Diagnostics;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace Har.Drift;

/// <summary>
/// Streaming drift monitor of ONE stream (one device): keeps a bounded current window (a ring buffer of
/// <see cref="DriftMonitorOptions.WindowLength"/> frames) and the latest model outputs
/// (<see cref="DriftMonitorOptions.OutputWindowLength"/> predictions), and scores them on an interval driven by a
/// <see cref="TimeProvider"/> whenever half a window of new frames arrived since the last scoring (the step the alarm's
/// thresholds are calibrated for; a stream that stalls is not scored again on the same frames, whose evidence the alarm
/// already counted), exporting metrics and raising <see cref="Scored"/>. The physics consistency checks also
/// use the evidence of the stream's earlier frames (bounded). For many devices use <see cref="DeviceDriftMonitor"/>:
/// frames of different devices back to back read as impossible turns. Thread-safe.
/// </summary>
public sealed class DriftMonitor : IDisposable
{
    private readonly DriftScorer _scorer;
    private readonly DriftMonitorOptions _options;
    private readonly TimeProvider _time;
    private readonly ILogger _logger;
    private readonly DriftMetrics _metrics;
    private readonly int _channels;
    private readonly FrameRing _frames;
    private readonly OutputRing _outputs;
    private readonly DeviceHistory _history = new();
    private readonly Lock _gate = new();
    private ITimer? _timer;
    private DriftReport? _latest;
    private long _scoredUpTo; // frames written when the last scoring took its window (under _gate)
    private readonly TickGate _ticks = new();

    /// <summary>Creates a monitor.</summary>
    /// <param name="profile">The reference profile.</param>
    /// <param name="options">Options (defaults when null).</param>
    /// <param name="timeProvider">Time source for the scoring interval (system time when null).</param>
    /// <param name="logger">Logger (none when null).</param>
    /// <exception cref="ArgumentException">An option of <paramref name="options"/> is out of its range (the message names it, its value and the range; the same rules <c>AddHarDrift</c> checks at start), or <see cref="DriftMonitorOptions.StatePath"/> and <see cref="DriftMonitorOptions.StateStore"/> are both set.</exception>
    public DriftMonitor(ReferenceProfile profile, DriftMonitorOptions? options = null, TimeProvider? timeProvider = null, ILogger<DriftMonitor>? logger = null)
    {
        ArgumentNullException.ThrowIfNull(profile);
        _options = options ?? new DriftMonitorOptions();
        DriftMonitorOptionsValidator.ThrowIfInvalid(_options, nameof(options));
        _scorer = new DriftScorer(profile, _options.Scoring);
        _time = timeProvider ?? TimeProvider.System;
        _logger = (ILogger?)logger ?? NullLogger.Instance;
        if (_options.WindowLength < profile.SegmentLength)
        {
            Log.WindowShorterThanProfile(_logger, _options.MonitorName, _options.WindowLength, profile.SegmentLength);
        }
        _metrics = new DriftMetrics(_options.MetricsRegistry, _options.MonitorName);
        _channels = profile.Channels.Count;
        _frames = new FrameRing(_options.WindowLength, _channels);
        _outputs = new OutputRing(_options.OutputWindowLength);
    }

    /// <summary>Raised after every scoring, with its report.</summary>
    internal event EventHandler<DriftReport>? Scored;

    /// <summary>Gets the most recent report, or null before the first scoring.</summary>
    internal DriftReport? Latest
    {
        get
        {
            lock (_gate)
            {
                return _latest;
            }
        }
    }

    /// <summary>Gets the number of frames currently held (at most the window length).</summary>
    internal int BufferedFrames
    {
        get
        {
            lock (_gate)
            {
                return _frames.Held;
            }
        }
    }

    /// <summary>Gets the device's physics evidence from the frames already scored.</summary>
    internal DeviceHistory History => _history;

    /// <summary>Appends frames (interleaved, in the profile's channel order) and optional per-frame timestamps (ms). Allocates nothing.</summary>
    /// <param name="interleaved">Whole frames.</param>
    /// <param name="timestampsMs">One timestamp per frame, or empty.</param>
    public void Append(ReadOnlySpan<float> interleaved, ReadOnlySpan<long> timestampsMs = default)
    {
        if (interleaved.Length % _channels != 0)
        {
            throw new ArgumentException($"Got {interleaved.Length} values, not a whole number of {_channels}-channel frames ({string.Join(' ', _scorer.Profile.ChannelNames)}).", nameof(interleaved));
        }

        var frames = interleaved.Length / _channels;
        if (!timestampsMs.IsEmpty && timestampsMs.Length != frames)
        {
            throw new ArgumentException($"Got {timestampsMs.Length} timestamps for {frames} frames; expected one per frame or none.", nameof(timestampsMs));
        }

        lock (_gate)
        {
            _frames.Append(interleaved, timestampsMs);
        }
    }

    /// <summary>
    /// Records the model's output on one window of this stream, for output drift against the profile's
    /// <see cref="ReferenceProfile.Outputs"/> (ignored for scoring when the profile has none). Allocates nothing.
    /// </summary>
    /// <param name="predictedClass">The predicted class index, in the order of <see cref="OutputReference.Labels"/> (the profile's model's), or <see cref="OutputReference.OtherActivity"/> for an activity those labels lack.</param>
    /// <param name="confidence">The top-class probability.</param>
    /// <param name="entropy">The predictive entropy in nats.</param>
    internal void RecordPrediction(int predictedClass, float confidence, float entropy)
    {
        OutputScoring.Validate(_scorer.Profile.Outputs, predictedClass, confidence, entropy);
        lock (_gate)
        {
            // The device's alarm as it stood when the prediction was made: a named input fault conditions its accuracy estimate.
            _outputs.Add(predictedClass, confidence, entropy, _latest?.Alarm);
        }
    }

    /// <summary>Forgets the frames, outputs and physics history (the device was re-mounted, recalibrated or replaced).</summary>
    internal void Reset()
    {
        lock (_gate)
        {
            _frames.Clear();
            _outputs.Clear();
            _history.Clear();
            _scoredUpTo = 0;
        }
    }

    /// <summary>
    /// Starts scoring on the time provider: every <see cref="DriftMonitorOptions.ScoreInterval"/>, when at least half a
    /// <see cref="DriftMonitorOptions.WindowLength"/> of new frames arrived since the last scoring. (<see cref="ScoreNow"/>
    /// scores whatever the window holds.)
    /// </summary>
    public void Start()
    {
        lock (_gate)
        {
            _timer ??= _time.CreateTimer(static s => ((DriftMonitor)s!).Tick(), this, _options.ScoreInterval, _options.ScoreInterval);
        }
    }

    /// <summary>One timer tick: scores when half a window of new frames arrived; never while the previous tick still scores.</summary>
    private void Tick()
    {
        if (!_ticks.TryRun(ScoreIfDue))
        {
            _metrics.TickSkipped();
            Log.TickSkipped(_logger, _options.MonitorName, _options.ScoreInterval);
        }
    }

    private void ScoreIfDue()
    {
        bool due;
        lock (_gate)
        {
            due = _frames.Written - _scoredUpTo >= Math.Max(1, _options.WindowLength / 2);
        }

        if (due)
        {
            ScoreNow();
        }
    }

    /// <summary>Scores the current window (and the recorded outputs) now.</summary>
    /// <returns>The report.</returns>
    public DriftReport ScoreNow()
    {
        float[] window;
        long[] stamps;
        long start;
        int[]? classes = null;
        float[]? confidence = null;
        float[]? entropy = null;
        DriftAlarm?[]? alarms = null;
        lock (_gate)
        {
            (window, stamps, start) = _frames.Snapshot();
            _scoredUpTo = _frames.Written;
            if (_scorer.Profile.Outputs is not null && _outputs.Count > 0)
            {
                (classes, confidence, entropy, alarms) = _outputs.Snapshot();
            }
        }

        var began = Stopwatch.GetTimestamp();
        var outputs = classes is null ? null : _scorer.ScoreOutputs(classes, confidence, entropy, alarms!);
        var report = _scorer.Score(window, _history, start, stamps, outputs);
        _metrics.Record(report, Stopwatch.GetElapsedTime(began));
        MonitorLog.Report(_logger, _options.MonitorName, report);
        lock (_gate)
        {
            _latest = report;
        }

        Scored?.Invoke(this, report);
        return report;
    }

    /// <inheritdoc/>
    public void Dispose()
    {
        lock (_gate)
        {
            _timer?.Dispose();
            _timer = null;
        }

        _metrics.Dispose();
    }
}
