using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace Har.Drift;

/// <summary>
/// Streaming drift monitor: keeps a bounded current window per channel (a ring buffer of
/// <see cref="DriftMonitorOptions.WindowLength"/> frames) and re-scores it on an interval driven by a
/// <see cref="TimeProvider"/>, exporting metrics and raising <see cref="Scored"/>. The physics consistency checks
/// also use the evidence of the stream's earlier frames (bounded, see <see cref="DeviceHistory"/>): one monitor is one
/// device's stream. A monitor that pools several devices' frames should turn those checks off
/// (<see cref="DriftScoringOptions.ConsistencyChecks"/>): frames of different devices back to back read as impossible
/// turns. Thread-safe.
/// </summary>
public sealed class DriftMonitor : IDisposable
{
    private readonly DriftScorer _scorer;
    private readonly DriftMonitorOptions _options;
    private readonly TimeProvider _time;
    private readonly ILogger _logger;
    private readonly DriftMetrics _metrics;
    private readonly int _channels;
    private readonly float[] _ring;
    private readonly long[] _timestamps;
    private readonly DeviceHistory _history = new();
    private readonly Lock _gate = new();
    private ITimer? _timer;
    private long _written;
    private bool _hasTimestamps;
    private DriftReport? _latest;

    /// <summary>Creates a monitor.</summary>
    /// <param name="profile">The reference profile.</param>
    /// <param name="options">Options (defaults when null).</param>
    /// <param name="timeProvider">Time source for the scoring interval (system time when null).</param>
    /// <param name="logger">Logger (none when null).</param>
    public DriftMonitor(ReferenceProfile profile, DriftMonitorOptions? options = null, TimeProvider? timeProvider = null, ILogger<DriftMonitor>? logger = null)
    {
        ArgumentNullException.ThrowIfNull(profile);
        _options = options ?? new DriftMonitorOptions();
        _scorer = new DriftScorer(profile, _options.Scoring);
        _time = timeProvider ?? TimeProvider.System;
        _logger = (ILogger?)logger ?? NullLogger.Instance;
        _metrics = new DriftMetrics(_options.MetricsRegistry, _options.MonitorName);
        _channels = profile.Channels.Count;
        _ring = new float[_options.WindowLength * _channels];
        _timestamps = new long[_options.WindowLength];
    }

    /// <summary>Raised after every scoring, with its report.</summary>
    public event EventHandler<DriftReport>? Scored;

    /// <summary>Gets the most recent report, or null before the first scoring.</summary>
    public DriftReport? Latest
    {
        get
        {
            lock (_gate)
            {
                return _latest;
            }
        }
    }

    /// <summary>
    /// Gets the device's physics evidence from the frames already scored (still-to-still turns, still postures), which the
    /// consistency checks of every scoring combine with the current window's; <see cref="DeviceHistory.Clear"/> it when the
    /// device is re-mounted, recalibrated or replaced.
    /// </summary>
    public DeviceHistory History => _history;

    /// <summary>Gets the number of frames currently held (at most the window length).</summary>
    public int BufferedFrames
    {
        get
        {
            lock (_gate)
            {
                return (int)Math.Min(_written, _options.WindowLength);
            }
        }
    }

    /// <summary>Appends frames (interleaved, in the profile's channel order) and optional per-frame timestamps (ms).</summary>
    /// <param name="interleaved">Whole frames.</param>
    /// <param name="timestampsMs">One timestamp per frame, or empty.</param>
    public void Append(ReadOnlySpan<float> interleaved, ReadOnlySpan<long> timestampsMs = default)
    {
        if (interleaved.Length % _channels != 0)
        {
            throw new ArgumentException($"Got {interleaved.Length} values, not a whole number of {_channels}-channel frames.", nameof(interleaved));
        }

        var frames = interleaved.Length / _channels;
        if (!timestampsMs.IsEmpty && timestampsMs.Length != frames)
        {
            throw new ArgumentException($"Got {timestampsMs.Length} timestamps for {frames} frames; expected one per frame or none.", nameof(timestampsMs));
        }

        lock (_gate)
        {
            _hasTimestamps = !timestampsMs.IsEmpty;
            for (var f = 0; f < frames; f++)
            {
                var slot = (int)(_written % _options.WindowLength);
                interleaved.Slice(f * _channels, _channels).CopyTo(_ring.AsSpan(slot * _channels, _channels));
                _timestamps[slot] = _hasTimestamps ? timestampsMs[f] : 0;
                _written++;
            }
        }
    }

    /// <summary>Starts re-scoring every <see cref="DriftMonitorOptions.ScoreInterval"/> on the time provider.</summary>
    public void Start()
    {
        lock (_gate)
        {
            _timer ??= _time.CreateTimer(_ => ScoreNow(), null, _options.ScoreInterval, _options.ScoreInterval);
        }
    }

    /// <summary>Scores the current window now.</summary>
    /// <returns>The report.</returns>
    public DriftReport ScoreNow()
    {
        float[] window;
        long[] stamps;
        long start;
        lock (_gate)
        {
            var held = (int)Math.Min(_written, _options.WindowLength);
            window = new float[held * _channels];
            stamps = _hasTimestamps ? new long[held] : [];
            var first = _written - held;
            start = first;
            for (var f = 0; f < held; f++)
            {
                var slot = (int)((first + f) % _options.WindowLength);
                _ring.AsSpan(slot * _channels, _channels).CopyTo(window.AsSpan(f * _channels));
                if (_hasTimestamps)
                {
                    stamps[f] = _timestamps[slot];
                }
            }
        }

        var report = _scorer.Score(window, _history, start, stamps);
        _metrics.Record(report);
        foreach (var c in report.Channels)
        {
            if (c.Verdict == DriftVerdict.Drifted)
            {
                Log.ChannelDrifted(_logger, _options.MonitorName, c.Channel, c.Ks?.Statistic ?? 0, c.Psi?.Statistic ?? 0, c.EffectiveN);
            }
        }

        foreach (var f in report.Findings)
        {
            Log.SensorFinding(_logger, _options.MonitorName, f.Kind, f.Message);
        }

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
    }
}
