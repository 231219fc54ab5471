using System.ComponentModel.DataAnnotations;

namespace Har.Drift;

/// <summary>How a <see cref="ReferenceProfile"/> is built.</summary>
public sealed class ReferenceProfileOptions
{
    /// <summary>Gets or sets the samples per training window (segment); use the length of the windows you will score.</summary>
    /// <value>The default value is 3000 (one minute at 50 Hz).</value>
    [Range(16, 10_000_000)]
    public int SegmentLength { get; set; } = 3000;

    /// <summary>Gets or sets the quantiles per channel stored for each training window.</summary>
    /// <value>The default value is 64.</value>
    [Range(4, 4096)]
    internal int SketchQuantiles { get; set; } = 64;

    /// <summary>Gets or sets the bound on each channel's stored sorted sample.</summary>
    /// <value>The default value is 20 000.</value>
    [Range(2, 10_000_000)]
    internal int MaxSortedSample { get; set; } = 20_000;

    /// <summary>Gets or sets the number of quantile bins stored per channel.</summary>
    /// <value>The default value is 10.</value>
    [Range(2, 64)]
    internal int Bins { get; set; } = PopulationStabilityIndex.DefaultBins;

    /// <summary>Gets or sets the quantile of the leave-one-group-out null distribution taken as the effect-size floor.</summary>
    /// <value>The default value is 0.98.</value>
    [Range(0.5, 1.0)]
    internal double FloorQuantile { get; set; } = 0.98;

    /// <summary>
    /// Gets or sets the central fraction of the training windows' physics statistics (gravity magnitude, rotation
    /// gain) that the consistency bounds enclose; the rotation misfit limit is its one-sided quantile.
    /// </summary>
    /// <value>The default value is 0.99.</value>
    [Range(0.5, 1.0)]
    internal double ConsistencyQuantile { get; set; } = 0.99;

    /// <summary>Gets or sets the sample rate of the recordings in Hz.</summary>
    /// <value>The default value is 50.</value>
    [Range(0.001, 1_000_000)]
    public double SampleRateHz { get; set; } = 50;

    /// <summary>Gets or sets the scoring options used while calibrating the floors (use the ones you will score with).</summary>
    /// <value>The default value is a default <see cref="DriftScoringOptions"/>.</value>
    internal DriftScoringOptions Scoring { get; set; } = new();
}

/// <summary>
/// Builds a <see cref="ReferenceProfile"/> from training recordings (interleaved frames), grouped by the unit that
/// varies naturally between deployments (the subject): floors are calibrated leaving each group out in turn.
/// </summary>
public sealed class ReferenceProfileBuilder
{
    private readonly string[] _channels;
    private readonly ReferenceProfileOptions _options;
    private readonly List<(string Group, float[] Samples)> _recordings = [];

    /// <summary>Creates a builder.</summary>
    /// <param name="channelNames">Channel names in frame order (e.g. ax ay az gx gy gz).</param>
    /// <param name="options">Build options (defaults when null).</param>
    /// <exception cref="ArgumentException">No channel names, or a name that is blank or repeated (compared ignoring case).</exception>
    /// <exception cref="ArgumentOutOfRangeException"><see cref="ReferenceProfileOptions.SegmentLength"/> is outside 16 … 10,000,000, or <see cref="ReferenceProfileOptions.SampleRateHz"/> is not above 0 (at most 1,000,000).</exception>
    public ReferenceProfileBuilder(IReadOnlyList<string> channelNames, ReferenceProfileOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(channelNames);
        if (channelNames.Count == 0)
        {
            throw new ArgumentException("At least one channel name is required.", nameof(channelNames));
        }

        for (var c = 0; c < channelNames.Count; c++)
        {
            if (string.IsNullOrWhiteSpace(channelNames[c]))
            {
                throw new ArgumentException($"Channel name {c} is {(channelNames[c] is null ? "null" : "blank")}; expected a name (e.g. ax), one per channel in frame order.", nameof(channelNames));
            }

            if (ReferenceProfileChecks.RepeatedName(channelNames, c, static n => n) is { } first)
            {
                // Windows are fed to a profile by channel name (Har.Inference refuses a model card that repeats one).
                throw new ArgumentException($"Channel '{channelNames[c]}' is named twice (channels {first} and {c}: {string.Join(' ', channelNames)}, compared ignoring case); expected each channel once.", nameof(channelNames));
            }
        }

        _channels = [.. channelNames];
        _options = options ?? new ReferenceProfileOptions();

        // A window of 0 samples would never advance through a recording (Build looped forever).
        ArgumentOutOfRangeException.ThrowIfLessThan(_options.SegmentLength, ReferenceProfileChecks.MinSegmentLength, nameof(options) + "." + nameof(ReferenceProfileOptions.SegmentLength));
        ArgumentOutOfRangeException.ThrowIfGreaterThan(_options.SegmentLength, ReferenceProfileChecks.MaxSegmentLength, nameof(options) + "." + nameof(ReferenceProfileOptions.SegmentLength));
        if (!(_options.SampleRateHz > 0 && _options.SampleRateHz <= ReferenceProfileChecks.MaxSampleRateHz))
        {
            throw new ArgumentOutOfRangeException(nameof(options), _options.SampleRateHz, "ReferenceProfileOptions.SampleRateHz must be above 0 and at most 1,000,000 Hz.");
        }
    }

    /// <summary>Gets the cross-fitted alarm evidence of the training recordings from the last <see cref="Build"/> (for calibration reports).</summary>
    internal IReadOnlyList<AlarmCalibration.EvidenceRun>? CalibrationEvidence { get; private set; }

    /// <summary>Adds one continuous recording.</summary>
    /// <param name="group">The group (subject) it belongs to.</param>
    /// <param name="interleaved">Frames of the builder's channels, in time order.</param>
    /// <returns>This builder.</returns>
    public ReferenceProfileBuilder AddRecording(string group, ReadOnlySpan<float> interleaved)
    {
        ArgumentException.ThrowIfNullOrEmpty(group);
        if (interleaved.Length % _channels.Length != 0)
        {
            throw new ArgumentException($"The recording holds {interleaved.Length} values, not a whole number of {_channels.Length}-channel frames.", nameof(interleaved));
        }

        _recordings.Add((group, interleaved.ToArray()));
        return this;
    }

    /// <summary>Builds the profile: channel summaries, window sketches, and floors calibrated leave-one-group-out.</summary>
    /// <param name="source">A description of the data (stored in the profile).</param>
    /// <returns>The frozen profile.</returns>
    public ReferenceProfile Build(string source)
    {
        if (_recordings.Count == 0)
        {
            throw new InvalidOperationException("No recordings were added; add training data with AddRecording before Build.");
        }

        var profile = BuildCore(source, _recordings);
        if (profile.Alarms is not { } bounds)
        {
            return profile;
        }

        // The alarm thresholds from out-of-sample evidence: each fold of groups streamed against a profile built without it.
        var evidence = AlarmCalibration.CrossFittedEvidence(_recordings, subset => BuildCore(source, subset), profile, _options.Scoring);
        CalibrationEvidence = evidence;
        return profile.WithAlarms(AlarmCalibration.WithRates(bounds, evidence, profile.SampleRateHz));
    }

    /// <summary>Builds a profile from some recordings, with the within-device bounds but no alarm thresholds.</summary>
    private ReferenceProfile BuildCore(string source, IReadOnlyList<(string Group, float[] Samples)> recordings)
    {
        var c = _channels.Length;
        var channelRefs = new ChannelReference[c];
        for (var ch = 0; ch < c; ch++)
        {
            var all = new List<double>();
            foreach (var (_, samples) in recordings)
            {
                for (var i = ch; i < samples.Length; i += c)
                {
                    if (float.IsFinite(samples[i]))
                    {
                        all.Add(samples[i]);
                    }
                }
            }

            if (all.Count == 0)
            {
                throw new InvalidOperationException($"Channel {_channels[ch]} has no finite training samples.");
            }

            var sorted = all.ToArray();
            SortHelper.Sort(sorted);
            var edges = PopulationStabilityIndex.QuantileEdges(sorted, _options.Bins);
            var counts = new long[_options.Bins];
            PopulationStabilityIndex.CountSorted(edges, sorted, counts);
            var iqr = PopulationStabilityIndex.Quantile(sorted, 0.75) - PopulationStabilityIndex.Quantile(sorted, 0.25);
            channelRefs[ch] = new ChannelReference(_channels[ch], sorted.Length, edges, counts, Sketch.Thin(sorted, _options.MaxSortedSample), iqr > 0 ? iqr : 1.0);
        }

        // Training windows: non-overlapping, a trailing part shorter than half a window is dropped.
        var windows = new List<(string Group, double[][] Series)>();
        var windowRecordings = new List<int>();
        var segments = new List<ReferenceSegment>();
        var gravityAxes = ChannelKinds.GravityAxes(_channels);
        var len = _options.SegmentLength;
        for (var rec = 0; rec < recordings.Count; rec++)
        {
            var (group, samples) = recordings[rec];
            var frames = samples.Length / c;
            for (var start = 0; start < frames; start += len)
            {
                var count = Math.Min(len, frames - start);
                if (count < len / 2)
                {
                    break;
                }

                var series = new double[c][];
                var quantiles = new double[c][];
                var neff = new double[c];
                var ok = true;
                for (var ch = 0; ch < c; ch++)
                {
                    var list = new List<double>(count);
                    for (var f = start; f < start + count; f++)
                    {
                        var v = samples[(f * c) + ch];
                        if (float.IsFinite(v))
                        {
                            list.Add(v);
                        }
                    }

                    if (list.Count < _options.Scoring.MinSamples)
                    {
                        ok = false;
                        break;
                    }

                    series[ch] = [.. list];
                    var sorted = (double[])series[ch].Clone();
                    SortHelper.Sort(sorted);
                    quantiles[ch] = Sketch.Quantiles(sorted, _options.SketchQuantiles);
                    neff[ch] = sorted[0] == sorted[^1] ? sorted.Length : Sketch.EffectiveSize(series[ch], _options.Scoring.MaxLag);
                }

                if (!ok)
                {
                    continue;
                }

                var gravity = gravityAxes.Length == 3 ? ChannelKinds.MeanDirection(series[gravityAxes[0]], series[gravityAxes[1]], series[gravityAxes[2]]) ?? [] : [];
                segments.Add(new ReferenceSegment(group, quantiles, neff, gravity));
                windows.Add((group, series));
                windowRecordings.Add(rec);
            }
        }

        if (segments.Count == 0)
        {
            throw new InvalidOperationException($"No recording is at least half a window ({len / 2} frames) long; the profile needs training windows.");
        }

        // Provisional profile (floors 0) to calibrate against, leaving each window's own group out.
        var provisional = new ReferenceProfile(channelRefs, segments, new CalibratedFloors(new double[c], new double[c], _options.FloorQuantile, 0), _options.SampleRateHz, len, source);
        var floors = Calibrate(provisional, windows);
        var consistency = SensorConsistency.Calibrate(_channels, windows, windowRecordings, _options.SampleRateHz, _options.ConsistencyQuantile);
        var profile = new ReferenceProfile(channelRefs, segments, floors, _options.SampleRateHz, len, source, null, consistency);
        return profile.WithAlarms(AlarmCalibration.Calibrate(profile, recordings));
    }

    private CalibratedFloors Calibrate(ReferenceProfile provisional, List<(string Group, double[][] Series)> windows)
    {
        var c = _channels.Length;
        var groups = windows.Select(w => w.Group).Distinct(StringComparer.Ordinal).Count();
        var scorer = new DriftScorer(provisional, _options.Scoring);
        var ds = Enumerable.Range(0, c).Select(_ => new List<double>()).ToArray();
        var psis = Enumerable.Range(0, c).Select(_ => new List<double>()).ToArray();
        foreach (var (group, series) in windows)
        {
            // With a single group there is nothing to leave out: compare with the other windows of that group.
            var stats = scorer.Compute(series, groups > 1 ? group : null);
            for (var ch = 0; ch < c; ch++)
            {
                if (stats.Channels[ch] is { } s)
                {
                    ds[ch].Add(s.D);
                    psis[ch].Add(s.Psi);
                }
            }
        }

        var ksFloor = new double[c];
        var psiFloor = new double[c];
        for (var ch = 0; ch < c; ch++)
        {
            ksFloor[ch] = QuantileOf(ds[ch], _options.FloorQuantile);
            psiFloor[ch] = QuantileOf(psis[ch], _options.FloorQuantile);
        }

        return new CalibratedFloors(ksFloor, psiFloor, _options.FloorQuantile, windows.Count);
    }

    private static double QuantileOf(List<double> values, double q)
    {
        if (values.Count == 0)
        {
            return 0;
        }

        var sorted = values.ToArray();
        Array.Sort(sorted);
        return PopulationStabilityIndex.Quantile(sorted, q);
    }
}
