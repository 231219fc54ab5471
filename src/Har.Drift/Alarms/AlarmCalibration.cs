namespace Har.Drift;

/// <summary>
/// Calibrates the <see cref="AlarmReference"/> on training recordings: each recording is streamed as one healthy
/// device, scored every half window on its last window (as <see cref="DeviceDriftMonitor"/> does), first to set the
/// bounds of the within-device and noise-floor checks; then every recording is streamed again against a profile built
/// without its fold of groups (cross-fitting: the evidence a new person's healthy device produces, not the evidence of
/// data the bounds were fitted on), and the false-alarm rate of each check's CUSUM is simulated at every threshold by
/// resampling those evidence sequences.
/// </summary>
internal static class AlarmCalibration
{
    /// <summary>Folds of groups for the cross-fitted alarm evidence (each streamed against a profile built without it).</summary>
    public const int Folds = 3;

    /// <summary>Bootstrap sessions simulated per calibration recording for the false-alarm rate curves.</summary>
    public const int Replicates = 400;

    /// <summary>Scorings per block of the circular block bootstrap (3 minutes at the half-minute step): keeps the dependence of overlapping windows.</summary>
    public const int BlockScorings = 6;

    /// <summary>The thresholds h the false-alarm rate is simulated at: 1.5 to 40 by 0.25.</summary>
    public static double[] Grid { get; } = [.. Enumerable.Range(0, 155).Select(i => AlarmState.MinThreshold + (0.25 * i))];

    /// <summary>The bounds of the within-device, noise-floor and unit checks from the training recordings (no alarm thresholds yet).</summary>
    public static AlarmReference? Calibrate(ReferenceProfile profile, IReadOnlyList<(string Group, float[] Samples)> recordings)
    {
        var names = profile.ChannelNames;
        var acc = ChannelKinds.GravityAxes(names);
        var gyro = ChannelKinds.GyroscopeAxes(names);
        if (acc.Length != 3 || profile.SensorConsistency is not { } consistency || profile.SampleRateHz <= 0)
        {
            return null;
        }

        var c = names.Count;
        var len = profile.SegmentLength;
        var step = Math.Max(1, len / 2);
        var floors = Lists(c);
        var ratios = Lists(c);
        var spreads = Lists(3);
        var shifts = new List<double>();
        var cadences = new List<double>();
        var gyros = new List<double>();
        var accScales = new List<double>();
        var gyroScales = new List<double>();
        long frames = 0;
        foreach (var (_, samples) in recordings)
        {
            var history = new DeviceHistory();
            var n = samples.Length / c;
            frames += n;
            for (var end = len; end <= n; end += step)
            {
                var start = end - len;
                var series = Split(samples, c, start, len);
                var f = SelfFeatures.Compute(series, acc, gyro, profile.SampleRateHz, consistency.GravityMagnitude);
                var s = history.Self.CompareAndCommit(f, start, end);
                for (var ch = 0; ch < c; ch++)
                {
                    Add(floors[ch], f.NoiseFloor[ch]);
                    Add(ratios[ch], s.NoiseRatio[ch]);
                }

                for (var k = 0; k < 3; k++)
                {
                    Add(spreads[k], f.StillSpread[k]);
                }

                Add(shifts, s.DirectionShift);
                Add(cadences, s.CadenceRatio);
                Add(gyros, s.GyroscopeRatio);
                Add(accScales, f.AccelerometerScale);
                Add(gyroScales, f.GyroscopeScale);
            }
        }

        if (accScales.Count == 0)
        {
            return null;
        }

        var q = AlarmReference.Quantile;
        return new AlarmReference(
            [.. floors.Select(l => Upper(l, q))],
            [.. ratios.Select(l => Upper(l, q))],
            [.. spreads.Select(l => Upper(l, q))],
            Upper(shifts, q),
            [Lower(cadences, 1 - q), Upper(cadences, q)],
            [Lower(gyros, 1 - q), Upper(gyros, q)],
            Median(accScales),
            gyroScales.Count > 0 ? Median(gyroScales) : double.NaN,
            [],
            new Dictionary<string, double[]>(StringComparer.Ordinal),
            frames / profile.SampleRateHz / 3600,
            step,
            0);
    }

    /// <summary>
    /// The alarm evidence of every training recording as a new device would produce it: the groups are split into
    /// <see cref="Folds"/> folds, and each fold's recordings are streamed (every half window, on the last window, with
    /// a fresh device history) against a profile built from the other folds only. With one group there is nothing to
    /// hold out and the recordings are streamed against the full profile.
    /// </summary>
    public static List<EvidenceRun> CrossFittedEvidence(IReadOnlyList<(string Group, float[] Samples)> recordings, Func<IReadOnlyList<(string Group, float[] Samples)>, ReferenceProfile> build, ReferenceProfile full, DriftScoringOptions options)
    {
        var groups = recordings.Select(r => r.Group).Distinct(StringComparer.Ordinal).Order(StringComparer.Ordinal).ToList();
        var folds = Math.Min(Folds, groups.Count);
        var foldOf = groups.Select((g, i) => (g, i % folds)).ToDictionary(x => x.g, x => x.Item2, StringComparer.Ordinal);
        var profiles = new ReferenceProfile[folds];
        if (folds < 2)
        {
            profiles[0] = full;
        }
        else
        {
            Parallel.For(0, folds, f => profiles[f] = build([.. recordings.Where(r => foldOf[r.Group] != f)]));
        }

        var runs = new EvidenceRun[recordings.Count];
        Parallel.For(0, recordings.Count, i =>
        {
            var (group, samples) = recordings[i];
            var profile = profiles[folds < 2 ? 0 : foldOf[group]];
            runs[i] = Stream(new DriftScorer(profile, options), profile, group, samples);
        });

        return [.. runs];
    }

    /// <summary>One recording streamed as a device: per scoring, the evidence of every failed check.</summary>
    private static EvidenceRun Stream(DriftScorer scorer, ReferenceProfile profile, string group, float[] samples)
    {
        var c = profile.Channels.Count;
        var len = profile.SegmentLength;
        var step = Math.Max(1, len / 2);
        var n = samples.Length / c;
        var history = new DeviceHistory();
        var scorings = new List<List<AlarmState.Evidence>>();
        for (var end = len; end <= n; end += step)
        {
            var start = end - len;
            var report = scorer.Score(samples.AsSpan(start * c, len * c), history, start, default, null, null, group);
            scorings.Add(Diagnosis.Evidence(report.Channels, report.Findings));
        }

        return new EvidenceRun(group, n, scorings);
    }

    /// <summary>
    /// The false-alarm rate curves: per check, the alarms per 10 device-hours a healthy device raises at each threshold
    /// of <see cref="Grid"/>, from <see cref="Replicates"/> sessions per recording resampled from its cross-fitted
    /// evidence (circular block bootstrap of <see cref="BlockScorings"/> scorings, the recording's own length; the first
    /// replicate is the recording itself), each run through the check's CUSUM. Seeded, so a profile is reproducible.
    /// </summary>
    public static AlarmReference WithRates(AlarmReference bounds, List<EvidenceRun> runs, double sampleRateHz)
    {
        var checks = runs.SelectMany(r => r.Scorings).SelectMany(s => s).Select(e => e.Check).Distinct(StringComparer.Ordinal).Order(StringComparer.Ordinal).ToList();
        var grid = Grid;
        var hours = runs.Sum(r => r.Frames) / sampleRateHz / 3600;
        var rates = new Dictionary<string, double[]>(StringComparer.Ordinal);
        foreach (var check in checks)
        {
            var episodes = new long[grid.Length];
            var rng = new Random(20261203);
            foreach (var run in runs)
            {
                var x = run.Scorings.Select(s => s.Where(e => e.Check == check).Sum(e => e.Weight)).ToArray();
                if (x.Length == 0 || x.All(v => v == 0))
                {
                    continue;
                }

                var block = Math.Min(BlockScorings, x.Length);
                var seq = new double[x.Length];
                for (var r = 0; r < Replicates; r++)
                {
                    for (var t = 0; t < x.Length;)
                    {
                        var from = r == 0 ? t : rng.Next(x.Length);
                        for (var b = 0; b < block && t < x.Length; b++, t++)
                        {
                            seq[t] = x[(from + b) % x.Length];
                        }
                    }

                    CountEpisodes(seq, grid, episodes);
                }
            }

            rates[check] = [.. episodes.Select(e => 10.0 * e / Replicates / hours)];
        }

        return bounds with { Grid = grid, FalseAlarmRates = rates, Sessions = runs.Count, EvidenceCap = Diagnosis.MaxExcess };
    }

    /// <summary>Runs the CUSUM over a sequence and adds, per threshold, how often the statistic crossed it from below.</summary>
    internal static void CountEpisodes(double[] x, double[] grid, long[] episodes)
    {
        var s = 0.0;
        foreach (var v in x)
        {
            var before = s;
            s = Math.Max(0, s - AlarmState.Allowance) + v;
            for (var i = 0; i < grid.Length && grid[i] <= s; i++)
            {
                episodes[i] += before < grid[i] ? 1 : 0;
            }
        }
    }

    internal static double[][] Split(float[] samples, int channels, int start, int count)
    {
        var series = new double[channels][];
        for (var ch = 0; ch < channels; ch++)
        {
            var s = new double[count];
            for (var i = 0; i < count; i++)
            {
                var v = samples[((start + i) * channels) + ch];
                s[i] = float.IsFinite(v) ? v : 0;
            }

            series[ch] = s;
        }

        return series;
    }

    /// <summary>One calibration recording streamed as a device.</summary>
    /// <param name="Group">The recording's group (subject).</param>
    /// <param name="Frames">Frames of the recording.</param>
    /// <param name="Scorings">Per scoring, the evidence of every failed check.</param>
    internal sealed record EvidenceRun(string Group, int Frames, List<List<AlarmState.Evidence>> Scorings);

    private static List<double>[] Lists(int n) => [.. Enumerable.Range(0, n).Select(_ => new List<double>())];

    private static void Add(List<double> list, double v)
    {
        if (!double.IsNaN(v) && !double.IsInfinity(v))
        {
            list.Add(v);
        }
    }

    private static double Median(List<double> l) => ImuPhysics.Median([.. l]);

    /// <summary>The q quantile widened away from the median by <see cref="AlarmReference.Margin"/>.</summary>
    private static double Upper(List<double> l, double q)
    {
        if (l.Count < SensorConsistencyReference.MinCalibrationWindows)
        {
            return double.NaN;
        }

        var med = Median(l);
        var v = SelfFeatures.Percentile([.. l], q);
        return v + (AlarmReference.Margin * (v - med));
    }

    private static double Lower(List<double> l, double q)
    {
        if (l.Count < SensorConsistencyReference.MinCalibrationWindows)
        {
            return double.NaN;
        }

        var med = Median(l);
        var v = SelfFeatures.Percentile([.. l], q);
        return v - (AlarmReference.Margin * (med - v));
    }
}
