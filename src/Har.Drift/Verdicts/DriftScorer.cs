using System.Buffers;
using System.Globalization;
namespace Har.Drift;

/// <summary>
/// Scores a current window of interleaved multi-channel samples against a <see cref="ReferenceProfile"/>.
/// </summary>
/// <remarks>
/// <para>Why the design: one minute of IMU data is one person doing one mix of activities, and 3000 samples at
/// 50 Hz are far from independent. Comparing it with the pooled training data by a raw KS p-value flags every
/// window (the activity mix alone moves the distribution, and n = 3000 makes any difference "significant").</para>
/// <para>So the scorer (1) runs sensor checks first (non-finite, saturation, flatline, timestamps, orientation);
/// (2) picks the reference windows whose per-channel quantile sketches are closest to the current window's,
/// ignoring the worst-matching channels so a broken channel cannot steer the match — the comparison is then
/// "this minute against training minutes with the same activity mix"; (3) computes KS D and PSI per channel
/// against that matched reference; (4) turns them into p-values at the effective sample size
/// (n_eff = n / (1 + 2 Σ ρ_k)); (5) corrects across all channels × tests (Holm or BH); and (6) calls a channel
/// <see cref="DriftVerdict.Drifted"/> only when a test is significant and its statistic clears the effect-size floor
/// calibrated on the training data (leave-one-subject-out).</para>
/// </remarks>
public sealed class DriftScorer
{
    private readonly ReferenceProfile _profile;
    private readonly DriftScoringOptions _options;
    private readonly int _channels;
    private readonly int[] _gravityAxes;
    private readonly bool[] _isAccelerometer;
    private readonly bool[] _isGyroscope;

    /// <summary>Creates a scorer.</summary>
    /// <param name="profile">The frozen reference.</param>
    /// <param name="options">Scoring options (defaults when null).</param>
    /// <exception cref="ArgumentException">An option of <paramref name="options"/> is out of its range (the message names it, its value and the range; the same rules <c>AddHarDrift</c> checks at start for <see cref="DriftMonitorOptions.Scoring"/>).</exception>
    public DriftScorer(ReferenceProfile profile, DriftScoringOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(profile);
        if (profile.Segments.Count == 0)
        {
            throw new ArgumentException("The reference profile has no training windows (segments) to compare with; rebuild it from longer recordings.", nameof(profile));
        }

        _profile = profile;
        _options = options ?? new DriftScoringOptions();
        OptionsGuard.ThrowIfInvalid(new DriftScoringOptionsValidator(), _options, nameof(options));
        _channels = profile.Channels.Count;
        _gravityAxes = ChannelKinds.GravityAxes(profile.ChannelNames);
        _isAccelerometer = [.. profile.ChannelNames.Select(ChannelKinds.IsAccelerometer)];
        _isGyroscope = [.. profile.ChannelNames.Select(ChannelKinds.IsGyroscope)];
    }

    /// <summary>Gets the reference profile.</summary>
    internal ReferenceProfile Profile => _profile;

    /// <summary>
    /// Scores one window on its own (the physics checks see only this window's turns and postures). A window with fewer
    /// finite samples per channel than the scoring's minimum (500 by default; an empty window, one of NaNs) is not an
    /// error: its channels are <see cref="DriftVerdict.Insufficient"/>, "not enough data to judge", the same verdict the
    /// monitors' <c>ScoreNow</c> gives a stream or device with no frames yet. (<see cref="DeviceDriftMonitor.Observe"/>
    /// refuses an empty window instead: it is one prediction's input, and a model never predicts on zero frames.)
    /// </summary>
    /// <param name="interleaved">Frames of <c>channels</c> values each, in the profile's channel order; may be empty.</param>
    /// <param name="timestampsMs">Optional timestamp (ms) per frame, for the sample-rate check.</param>
    /// <returns>The report with per-channel verdicts, evidence and sensor findings.</returns>
    /// <exception cref="ArgumentException">The window is not a whole number of frames, or the timestamps are not one per frame.</exception>
    public DriftReport Score(ReadOnlySpan<float> interleaved, ReadOnlySpan<long> timestampsMs = default) =>
        Score(interleaved, new DeviceHistory(), 0, timestampsMs);

    /// <summary>
    /// Scores the next window of a device's stream: the physics consistency checks (gravity magnitude per axis,
    /// gyroscope rotation) use this window's evidence plus the evidence the device showed in the windows scored
    /// before with the same <paramref name="history"/>, which then takes in this window's evidence. The channel
    /// verdicts (KS, PSI) and the other sensor checks depend on this window only.
    /// </summary>
    /// <param name="interleaved">Frames of <c>channels</c> values each, in the profile's channel order; the frames that follow the ones already scored with <paramref name="history"/>.</param>
    /// <param name="history">The device's history (one per device and session).</param>
    /// <param name="timestampsMs">Optional timestamp (ms) per frame, for the sample-rate check.</param>
    /// <returns>The report with per-channel verdicts, evidence and sensor findings.</returns>
    internal DriftReport Score(ReadOnlySpan<float> interleaved, DeviceHistory history, ReadOnlySpan<long> timestampsMs = default)
    {
        ArgumentNullException.ThrowIfNull(history);
        return Score(interleaved, history, history.FramesSeen, timestampsMs);
    }

    /// <summary>
    /// Scores the model's outputs on current windows against the profile's <see cref="ReferenceProfile.Outputs"/>:
    /// predicted-class mix (chi-square at the effective n, Jensen–Shannon distance floor) and the confidence and entropy
    /// distributions (Kolmogorov–Smirnov at the effective n, KS D floor). With <paramref name="inputAlarms"/>, the input
    /// side's verdict on the devices the predictions came from: a prediction made while its device's alarm was raised with
    /// a named cause is estimated with the reference's accuracy under that fault
    /// (<see cref="OutputReference.WithFaultAccuracy(InputFault, ReadOnlySpan{int}, ReadOnlySpan{int})"/>, listed in
    /// <see cref="OutputVerdict.NamedFaults"/>), not with its confidence; a named cause the reference holds no accuracy for
    /// makes the estimate unreliable (<see cref="OutputVerdict.EstimateReliable"/>).
    /// </summary>
    /// <param name="predictedClass">Predicted class index per window, in the model's (and <see cref="OutputReference.Labels"/>') order, in time order; <see cref="OutputReference.OtherActivity"/> for an activity those labels lack.</param>
    /// <param name="confidence">Top-class probability per window.</param>
    /// <param name="entropy">Predictive entropy (nats) per window.</param>
    /// <param name="inputAlarms">Per prediction, its device's alarm (<see cref="DriftReport.Alarm"/> of the device's latest scoring) when it was made, or null; <see langword="null"/> (the default) when the input side is not known.</param>
    /// <returns>The verdict with its evidence (<see cref="DriftVerdict.Insufficient"/> below <see cref="DriftScoringOptions.MinPredictions"/>).</returns>
    /// <exception cref="InvalidOperationException">The profile has no output reference.</exception>
    public OutputVerdict ScoreOutputs(ReadOnlySpan<int> predictedClass, ReadOnlySpan<float> confidence, ReadOnlySpan<float> entropy, IReadOnlyList<DriftAlarm?>? inputAlarms = null)
    {
        var reference = _profile.Outputs ?? throw new InvalidOperationException("The reference profile has no model-output reference; attach one with profile.WithOutputs(OutputReference.FromPredictions(...)) from the model's predictions on the reference data.");
        return OutputScoring.Score(reference, _options, predictedClass, confidence, entropy, inputAlarms);
    }

    /// <summary>Scores a window that starts at frame <paramref name="windowStart"/> of the device's stream (windows may overlap).</summary>
    internal DriftReport Score(ReadOnlySpan<float> interleaved, DeviceHistory history, long windowStart, ReadOnlySpan<long> timestampsMs, OutputVerdict? outputs = null, string? device = null, string? excludeGroup = null)
    {
        if (interleaved.Length % _channels != 0)
        {
            throw new ArgumentException($"The window holds {interleaved.Length} values, not a whole number of {_channels}-channel frames ({string.Join(' ', _profile.ChannelNames)}).", nameof(interleaved));
        }

        var frames = interleaved.Length / _channels;
        if (!timestampsMs.IsEmpty && timestampsMs.Length != frames)
        {
            throw new ArgumentException($"Got {timestampsMs.Length} timestamps for {frames} frames; expected one per frame.", nameof(timestampsMs));
        }

        var series = new double[_channels][];
        var findings = new List<SensorFinding>();
        for (var c = 0; c < _channels; c++)
        {
            series[c] = ExtractFinite(interleaved, c, frames, out var nonFinite);
            if (nonFinite > 0)
            {
                findings.Add(new SensorFinding(SensorFindingKind.NonFinite, _profile.Channels[c].Name, nonFinite / (double)frames, 0,
                    $"{nonFinite} of {frames} samples of {_profile.Channels[c].Name} are NaN or infinite; they were left out of the tests."));
            }
        }

        SensorChecks(series, timestampsMs, findings);
        if (_options.ConsistencyChecks && _profile.SensorConsistency is { } consistency && _profile.SampleRateHz > 0)
        {
            SensorConsistency.Check(consistency, _profile.ChannelNames, series, _profile.SampleRateHz, findings, history, windowStart);
        }

        var notes = new List<string>();
        if (_options.ConsistencyChecks && _profile.SensorConsistency is { } c2 && _profile.SampleRateHz > 0)
        {
            SelfChecks.Check(_profile.Alarms, _profile.ChannelNames, series, _profile.SampleRateHz, c2.GravityMagnitude, history, windowStart, findings, notes);
        }

        var stats = Compute(series, excludeGroup);
        var report = Decide(stats, findings, outputs, device);
        report.Unchecked = notes;
        report.Alarm = UpdateAlarm(report, history.Alarm, frames, notes);
        return report;
    }

    /// <summary>Feeds a scoring to the device's sequential alarm; a window shorter than the profile's is not used for it (its statistics have no calibrated floors).</summary>
    private DriftAlarm? UpdateAlarm(DriftReport report, AlarmState state, int frames, List<string> notes)
    {
        if (_profile.Alarms is not { } alarms)
        {
            return null;
        }

        var budget = _options.FalseAlarmsPerTenHours;
        if (frames < _profile.SegmentLength)
        {
            notes.Add($"window of {frames} frames is shorter than the profile's {_profile.SegmentLength}: not used for the alarm");
            var lead = state.Leading;
            var h0 = lead is null ? AlarmState.MinThreshold : alarms.Threshold(lead, budget);
            var raised0 = state.Statistic >= h0;
            var (cause0, channels0, text0) = state.Name(raised0, leadingFailedNow: false, (DriftCause.None, [], "window too short for the alarm; the statistic is unchanged."), "this window is too short for the alarm, whose statistic is unchanged");
            return new DriftAlarm(raised0, state.Statistic, h0, cause0, channels0, cause0 is DriftCause.None ? "Window too short for the alarm; the statistic is unchanged." : text0);
        }

        var evidence = Diagnosis.Evidence(report.Channels, report.Findings, alarms.Cap, alarms.EvidenceCap is not null);
        var (_, statistic, threshold) = state.Update(evidence, check => alarms.Threshold(check, budget));
        var leadingFailedNow = evidence.Exists(e => e.Check == state.Leading);
        var units = nameof(SensorFindingKind.Units);
        var unitsRaised = state.Sums.TryGetValue(units, out var unitsSum) && unitsSum >= alarms.Threshold(units, budget);
        var raised = statistic >= threshold;
        var (cause, channels, text) = state.Name(raised, leadingFailedNow, Diagnosis.Name(report.Channels, report.Findings, state.Leading, unitsRaised, SensorAxesOf));
        return new DriftAlarm(raised, statistic, threshold, cause, channels, text);
    }

    internal readonly record struct ChannelStats(int N, double NEff, double RefNEff, double D, double KsP, double Psi, double PsiP, double[] Edges, long[] RefCounts, long[] CurCounts);

    internal readonly record struct WindowStats(ChannelStats?[] Channels, int[] Matched);

    /// <summary>Matched-reference statistics of a window (series = finite values per channel, in time order).</summary>
    internal WindowStats Compute(double[][] series, string? excludeGroup)
    {
        var q = _profile.Segments[0].Quantiles[0].Length;
        var total = 0;
        foreach (var s in series)
        {
            total += s.Length;
        }

        // The sorted copies and the pooled reference live in rented buffers: a scoring allocates only its results.
        var sortedBuffer = ArrayPool<double>.Shared.Rent(Math.Max(1, total));
        var pooledBuffer = ArrayPool<double>.Shared.Rent(Math.Max(1, _options.MatchedSegments * q));
        try
        {
            Span<int> offsets = stackalloc int[_channels];
            var sketches = new double[_channels][];
            var usable = new bool[_channels];
            var offset = 0;
            for (var c = 0; c < _channels; c++)
            {
                offsets[c] = offset;
                var sorted = sortedBuffer.AsSpan(offset, series[c].Length);
                offset += sorted.Length;
                series[c].CopyTo(sorted);
                SortHelper.Sort(sorted);
                usable[c] = sorted.Length >= _options.MinSamples;
                sketches[c] = usable[c] ? Sketch.Quantiles(sorted, q) : [];
            }

            var matched = Match(sketches, usable, excludeGroup);
            var result = new ChannelStats?[_channels];
            if (matched.Length == 0)
            {
                return new WindowStats(result, matched);
            }

            for (var c = 0; c < _channels; c++)
            {
                if (!usable[c])
                {
                    continue;
                }

                var pooled = pooledBuffer.AsSpan(0, matched.Length * q);
                var refNEff = 0.0;
                for (var k = 0; k < matched.Length; k++)
                {
                    var seg = _profile.Segments[matched[k]];
                    seg.Quantiles[c].CopyTo(pooled[(k * q)..]);
                    refNEff += seg.EffectiveSize[c];
                }

                pooled.Sort();
                ReadOnlySpan<double> cur = sortedBuffer.AsSpan(offsets[c], series[c].Length);
                var n = cur.Length;
                var nEff = Sketch.EffectiveSize(series[c], _options.MaxLag);
                if (cur[0] == cur[^1])
                {
                    // A constant window has no sampling variability to discount: every sample says the same.
                    nEff = n;
                }

                var en = nEff * refNEff / (nEff + refNEff);
                var d = KolmogorovSmirnov.Statistic(pooled, cur);
                var ksP = KolmogorovDistribution.Sf(Math.Max(1, (int)Math.Round(en, MidpointRounding.ToEven)), d);

                var edges = PopulationStabilityIndex.QuantileEdges(pooled, _options.PsiBins);
                var refCounts = new long[_options.PsiBins];
                PopulationStabilityIndex.CountSorted(edges, pooled, refCounts);
                var curCounts = new long[_options.PsiBins];
                PopulationStabilityIndex.Count(edges, cur, curCounts);
                var psi = PopulationStabilityIndex.FromCounts(refCounts, curCounts, _options.PsiEpsilon);
                var psiP = CategoricalTests.ChiSquareSf(psi * en, _options.PsiBins - 1);
                result[c] = new ChannelStats(n, nEff, refNEff, d, ksP, psi, psiP, edges, refCounts, curCounts);
            }

            return new WindowStats(result, matched);
        }
        finally
        {
            ArrayPool<double>.Shared.Return(sortedBuffer);
            ArrayPool<double>.Shared.Return(pooledBuffer);
        }
    }

    private int[] Match(double[][] sketches, bool[] usable, string? excludeGroup)
    {
        var used = 0;
        foreach (var u in usable)
        {
            used += u ? 1 : 0;
        }

        if (used == 0)
        {
            return [];
        }

        var keep = Math.Max(1, used - _options.TrimmedChannels);
        var candidates = new List<(double Distance, int Index)>(_profile.Segments.Count);
        Span<double> perChannel = stackalloc double[_channels];
        for (var s = 0; s < _profile.Segments.Count; s++)
        {
            var seg = _profile.Segments[s];
            if (excludeGroup is not null && seg.Group == excludeGroup)
            {
                continue;
            }

            var m = 0;
            for (var c = 0; c < _channels; c++)
            {
                if (!usable[c])
                {
                    continue;
                }

                var a = sketches[c];
                var b = seg.Quantiles[c];
                var sum = 0.0;
                for (var i = 0; i < a.Length; i++)
                {
                    sum += Math.Abs(a[i] - b[i]);
                }

                perChannel[m++] = sum / a.Length / _profile.Channels[c].Scale;
            }

            var dist = perChannel[..m];
            dist.Sort();
            var total = 0.0;
            for (var i = 0; i < keep; i++)
            {
                total += dist[i];
            }

            candidates.Add((total / keep, s));
        }

        candidates.Sort((x, y) => x.Distance != y.Distance ? x.Distance.CompareTo(y.Distance) : x.Index.CompareTo(y.Index));
        var k = Math.Min(_options.MatchedSegments, candidates.Count);
        var matched = new int[k];
        for (var i = 0; i < k; i++)
        {
            matched[i] = candidates[i].Index;
        }

        return matched;
    }

    internal DriftReport Decide(WindowStats stats, List<SensorFinding> findings, OutputVerdict? outputs = null, string? device = null)
    {
        // Every available p-value of every channel and test forms one family.
        var pValues = new List<double>();
        foreach (var s in stats.Channels)
        {
            if (s is { } v)
            {
                pValues.Add(v.KsP);
                pValues.Add(v.PsiP);
            }
        }

        var adjusted = MultipleTesting.Adjust(pValues, _options.Correction);
        var verdicts = new ChannelVerdict[_channels];
        var idx = 0;
        for (var c = 0; c < _channels; c++)
        {
            var name = _profile.Channels[c].Name;
            if (stats.Channels[c] is not { } s)
            {
                verdicts[c] = new ChannelVerdict(name, DriftVerdict.Insufficient, 0, 0, 0, null, null);
                continue;
            }

            var ksFloor = _options.KsFloor ?? _profile.Floors.KsFloor[c];
            var psiFloor = _options.PsiFloor ?? _profile.Floors.PsiFloor[c];
            var ksAdj = adjusted[idx++];
            var psiAdj = adjusted[idx++];
            var ks = new TestEvidence("ks", s.D, s.KsP, ksAdj, ksFloor, ksAdj <= _options.Alpha, s.D >= ksFloor);
            var psi = new TestEvidence("psi", s.Psi, s.PsiP, psiAdj, psiFloor, psiAdj <= _options.Alpha, s.Psi >= psiFloor, s.Edges, s.RefCounts, s.CurCounts);
            var drifted = (ks.Significant && ks.AboveFloor) || (psi.Significant && psi.AboveFloor);
            verdicts[c] = new ChannelVerdict(name, drifted ? DriftVerdict.Drifted : DriftVerdict.Stable, s.N, s.NEff, s.RefNEff, ks, psi);
        }

        return new DriftReport(_profile.Hash, _options.Correction, _options.Alpha, stats.Matched, verdicts, findings, outputs, device);
    }

    internal double[][] Split(ReadOnlySpan<float> interleaved)
    {
        var frames = interleaved.Length / _channels;
        var series = new double[_channels][];
        for (var c = 0; c < _channels; c++)
        {
            series[c] = ExtractFinite(interleaved, c, frames, out _);
        }

        return series;
    }

    private double[] ExtractFinite(ReadOnlySpan<float> interleaved, int channel, int frames, out int nonFinite)
    {
        var values = new double[frames];
        var n = 0;
        for (var f = 0; f < frames; f++)
        {
            var v = interleaved[(f * _channels) + channel];
            if (float.IsFinite(v))
            {
                values[n++] = v;
            }
        }

        nonFinite = frames - n;
        return n == frames ? values : values[..n];
    }

    /// <summary>The names of the channels <paramref name="ofSensor"/> marks, in profile order.</summary>
    private string[] SensorAxes(bool[] ofSensor)
    {
        var axes = new List<string>(3);
        for (var c = 0; c < _channels; c++)
        {
            if (ofSensor[c])
            {
                axes.Add(_profile.Channels[c].Name);
            }
        }

        return [.. axes];
    }

    /// <summary>The axes of the sensor <paramref name="channel"/> belongs to (the channel alone when it is neither the accelerometer's nor the gyroscope's).</summary>
    internal IReadOnlyList<string> SensorAxesOf(string channel)
    {
        for (var c = 0; c < _channels; c++)
        {
            if (_profile.Channels[c].Name == channel)
            {
                return _isGyroscope[c] ? SensorAxes(_isGyroscope) : _isAccelerometer[c] ? SensorAxes(_isAccelerometer) : [channel];
            }
        }

        return [channel];
    }

    /// <summary>Values this many times the configured sensor range are a unit error, not clipping.</summary>
    internal const double OutOfRangeFactor = 2;

    private void SensorChecks(double[][] series, ReadOnlySpan<long> timestampsMs, List<SensorFinding> findings)
    {
        var unitsNamed = (Accelerometer: false, Gyroscope: false);
        for (var c = 0; c < _channels; c++)
        {
            var s = series[c];
            var name = _profile.Channels[c].Name;
            if (s.Length == 0)
            {
                continue;
            }

            double? range = _isAccelerometer[c] ? _options.AccelerometerRange : _isGyroscope[c] ? _options.GyroscopeRange : null;
            if (range is { } r)
            {
                var limit = r * 0.995;
                var saturated = 0;
                var peak = 0.0;
                foreach (var v in s)
                {
                    saturated += Math.Abs(v) >= limit ? 1 : 0;
                    peak = Math.Max(peak, Math.Abs(v));
                }

                var fraction = saturated / (double)s.Length;
                if (peak >= OutOfRangeFactor * r)
                {
                    // A sensor never reports beyond its range: values far past it are in another unit (a gyroscope
                    // in deg/s swings to hundreds where rad/s stays within ±35), not clipped. A unit is the sensor's,
                    // so the finding names all its axes, once, whichever axis crossed first.
                    var gyroscope = _isGyroscope[c];
                    if (gyroscope ? !unitsNamed.Gyroscope : !unitsNamed.Accelerometer)
                    {
                        var unit = gyroscope ? "deg/s where rad/s is expected" : "m/s² where g is expected";
                        var axes = SensorAxes(gyroscope ? _isGyroscope : _isAccelerometer);
                        findings.Add(new SensorFinding(SensorFindingKind.Units, name, peak / r, OutOfRangeFactor, string.Create(CultureInfo.InvariantCulture,
                            $"{name} reaches {peak:G4}, {peak / r:F1}× the sensor range ±{r:G3}, which no sensor reports: the {(gyroscope ? "gyroscope" : "accelerometer")}'s unit ({string.Join(", ", axes)}) is {unit} (or the configured range is wrong)."),
                            s.Length, axes));
                        unitsNamed = gyroscope ? unitsNamed with { Gyroscope = true } : unitsNamed with { Accelerometer = true };
                    }
                }
                else if (saturated > 0 && fraction >= _options.SaturationFraction)
                {
                    findings.Add(new SensorFinding(SensorFindingKind.Saturation, name, fraction, _options.SaturationFraction,
                        $"{saturated} samples of {name} ({fraction:P1}) sit at the sensor range ±{r:G3}; the signal is clipped."));
                }
            }

            var longest = 1;
            var run = 1;
            for (var i = 1; i < s.Length; i++)
            {
                run = s[i] == s[i - 1] ? run + 1 : 1;
                longest = Math.Max(longest, run);
            }

            if (longest >= _options.FlatlineRun)
            {
                findings.Add(new SensorFinding(SensorFindingKind.Flatline, name, longest, _options.FlatlineRun,
                    $"{name} repeated the same value for {longest} consecutive samples; the sensor looks stuck."));
            }
        }

        if (!timestampsMs.IsEmpty && timestampsMs.Length > 2 && _profile.SampleRateHz > 0)
        {
            var nominal = 1000.0 / _profile.SampleRateHz;
            double sum = 0, sumSq = 0;
            var count = timestampsMs.Length - 1;
            for (var i = 1; i < timestampsMs.Length; i++)
            {
                double dt = timestampsMs[i] - timestampsMs[i - 1];
                sum += dt;
                sumSq += (dt - nominal) * (dt - nominal);
            }

            var relative = Math.Sqrt(sumSq / count) / nominal;
            if (relative > _options.JitterTolerance)
            {
                findings.Add(new SensorFinding(SensorFindingKind.SampleRateJitter, null, relative, _options.JitterTolerance,
                    $"Sample intervals deviate from the nominal {nominal:G3} ms by {relative:P0} RMS (mean interval {sum / count:G4} ms): jitter or gaps."));
            }
        }

        if (_gravityAxes.Length == 3 && _profile.Segments.Any(s => s.Gravity.Length == 3))
        {
            var g = ChannelKinds.MeanDirection(series[_gravityAxes[0]], series[_gravityAxes[1]], series[_gravityAxes[2]]);
            if (g is { } dir)
            {
                var best = double.PositiveInfinity;
                foreach (var seg in _profile.Segments)
                {
                    if (seg.Gravity.Length == 3)
                    {
                        var dot = Math.Clamp((dir[0] * seg.Gravity[0]) + (dir[1] * seg.Gravity[1]) + (dir[2] * seg.Gravity[2]), -1, 1);
                        best = Math.Min(best, Math.Acos(dot) * 180 / Math.PI);
                    }
                }

                if (best > _options.OrientationChangeDegrees)
                {
                    findings.Add(new SensorFinding(SensorFindingKind.OrientationChange, null, best, _options.OrientationChangeDegrees,
                        $"The gravity direction is {best:F0}° from every reference window's: the device is mounted differently or its axes are swapped."));
                }
            }
        }
    }
}
