using System.Collections.Concurrent;

namespace Har.Deployment;

/// <summary>
/// The per-version observation windows the serving path feeds and the rollout analysis reads: request
/// and error counts, latency quantiles, confidence, uncertainty, predicted-class counts, and paired
/// comparisons (candidate or shadow versus stable on the same window). Thread-safe; each analysis
/// takes a snapshot and starts a fresh interval.
/// </summary>
internal sealed partial class RolloutObservations
{
    /// <summary>The largest class count supported.</summary>
    public const int MaxClasses = 256;

    private readonly ConcurrentDictionary<string, VersionAccumulator> _versions = new(StringComparer.Ordinal);
    private readonly PairAccumulator _pairs = new();
    private readonly Lock _intervalLock = new();
    private DateTimeOffset _intervalStart;

    /// <summary>Initializes a new instance of the <see cref="RolloutObservations"/> class.</summary>
    /// <param name="intervalStart">When the first interval starts.</param>
    public RolloutObservations(DateTimeOffset intervalStart = default) => _intervalStart = intervalStart;

    /// <summary>Records one successful prediction of <paramref name="version"/>.</summary>
    /// <param name="version">The model version.</param>
    /// <param name="observation">The prediction.</param>
    public void RecordPrediction(string version, in PredictionObservation observation)
    {
        ArgumentNullException.ThrowIfNull(version);
        if ((uint)observation.Label >= MaxClasses)
        {
            throw new ArgumentOutOfRangeException(nameof(observation), observation.Label, $"Class index {observation.Label} is outside [0, {MaxClasses}).");
        }

        Get(version).Record(observation);
    }

    /// <summary>Records one failed request of <paramref name="version"/>.</summary>
    /// <param name="version">The model version.</param>
    /// <param name="latency">How long the caller waited for the failure.</param>
    public void RecordError(string version, TimeSpan latency)
    {
        ArgumentNullException.ThrowIfNull(version);
        Get(version).RecordError(latency);
    }

    /// <summary>Records a successful mirrored run: the stable version on a window the candidate served (its result is not served).</summary>
    /// <param name="version">The model version.</param>
    /// <param name="latency">How long the run waited (queueing included).</param>
    /// <param name="serviceTime">The model's own inference time per window, or <see cref="TimeSpan.Zero"/> when not measured.</param>
    /// <param name="batchSize">The windows in the run that scored it (1 = a single-window run).</param>
    public void RecordLatency(string version, TimeSpan latency, TimeSpan serviceTime = default, int batchSize = 1)
    {
        ArgumentNullException.ThrowIfNull(version);
        Get(version).RecordLatency(latency, serviceTime, batchSize);
    }

    /// <summary>
    /// Records a failed mirrored run of <paramref name="version"/> (the stable version on a window the candidate served):
    /// not a request, but with the successful ones the stable version's error rate on the candidate's traffic.
    /// </summary>
    /// <param name="version">The model version.</param>
    /// <param name="latency">How long the run waited for the failure.</param>
    public void RecordMirrorError(string version, TimeSpan latency)
    {
        ArgumentNullException.ThrowIfNull(version);
        Get(version).RecordMirrorError(latency);
    }

    /// <summary>Records two versions' predictions on the same window.</summary>
    /// <param name="pair">The paired predictions.</param>
    public void RecordPair(in PairedObservation pair)
    {
        if ((uint)pair.CandidateLabel >= MaxClasses || (uint)pair.StableLabel >= MaxClasses)
        {
            throw new ArgumentOutOfRangeException(nameof(pair), $"Class indexes {pair.CandidateLabel}/{pair.StableLabel} are outside [0, {MaxClasses}).");
        }

        _pairs.Record(pair);
    }

    /// <summary>Clears everything recorded and starts a new interval at <paramref name="start"/>.</summary>
    /// <param name="start">When the new interval starts.</param>
    public void Reset(DateTimeOffset start)
    {
        lock (_intervalLock)
        {
            foreach (var acc in _versions.Values)
            {
                _ = acc.Take(0);
            }

            _ = _pairs.Take(0);
            _intervalStart = start;
        }
    }

    /// <summary>
    /// Takes the snapshot for <paramref name="candidate"/> against <paramref name="stable"/> of everything
    /// recorded since the interval started; with <paramref name="reset"/> a new interval starts at
    /// <paramref name="end"/>, otherwise the samples are kept and the interval is extended (an
    /// inconclusive analysis judges the next time on more data).
    /// </summary>
    internal AnalysisSnapshot TakeSnapshot(string candidate, string stable, DateTimeOffset end, IReadOnlyList<string> labels, TimeSpan? candidateBaseline = null, TimeSpan? stableBaseline = null, OutputReference? candidateReference = null, OutputReference? stableReference = null, bool reset = true)
    {
        lock (_intervalLock)
        {
            var classes = Math.Max(labels.Count, 1);
            var cand = Get(candidate).Take(classes, reset);
            var stab = Get(stable).Take(classes, reset);
            foreach (var (version, acc) in _versions)
            {
                if (version != candidate && version != stable)
                {
                    _ = acc.Take(0);
                }
            }

            var pairs = _pairs.Take(classes, reset);
            var snapshot = new AnalysisSnapshot(_intervalStart, end, cand.ToWindow(candidate), stab.ToWindow(stable), pairs.ToWindow(), labels, candidateBaseline, stableBaseline, candidateReference, stableReference);
            if (reset)
            {
                _intervalStart = end;
            }

            return snapshot;
        }
    }

    private VersionAccumulator Get(string version) => _versions.GetOrAdd(version, static _ => new VersionAccumulator());

    private sealed class VersionAccumulator
    {
        /// <summary>Takes everything recorded (histograms included) and starts empty: what a fleet replica ships.</summary>
        public ObservationDelta.Version Drain()
        {
            lock (_lock)
            {
                var delta = new ObservationDelta.Version(_requests, _errors, _confidenceSum, _confidenceSumSquares, _uncertain, [.. _classes], _latency.NonEmpty(), _service.NonEmpty()) { Single = _single.NonEmpty(), BatchSizeSum = _batchSizeKnown ? _batchSizeSum : null, MirrorRuns = _mirrorRuns, MirrorErrors = _mirrorErrors };
                _requests = _errors = _uncertain = _mirrorRuns = _mirrorErrors = 0;
                _confidenceSum = _confidenceSumSquares = 0;
                Array.Clear(_classes);
                _latency.Reset();
                _service.Reset();
                _single.Reset();
                (_batchSizeSum, _batchSizeKnown) = (0, true);
                return delta;
            }
        }

        /// <summary>Adds what another replica recorded, as if it had been recorded here.</summary>
        public void Merge(ObservationDelta.Version d)
        {
            lock (_lock)
            {
                if (d.Classes.Length > _classes.Length)
                {
                    Array.Resize(ref _classes, Math.Min(MaxClasses, d.Classes.Length));
                }

                for (var i = 0; i < Math.Min(d.Classes.Length, _classes.Length); i++)
                {
                    _classes[i] += d.Classes[i];
                }

                _requests += d.Requests;
                _errors += d.Errors;
                _mirrorRuns += d.MirrorRuns ?? 0; // a replica that does not ship them: a smaller sample of the stable version's mirrored runs
                _mirrorErrors += d.MirrorErrors ?? 0;
                _confidenceSum += d.ConfidenceSum;
                _confidenceSumSquares += d.ConfidenceSumSquares;
                _uncertain += d.Uncertain;
                _latency.Add(d.Latency);
                _service.Add(d.Service);
                if (d.Single is { } single)
                {
                    _single.Add(single);
                }

                if (d.BatchSizeSum is { } batchSizes)
                {
                    _batchSizeSum += batchSizes;
                }
                else if (d.Service.Count > 0)
                {
                    _batchSizeKnown = false; // a replica that does not ship batch sizes: the mean is unknown until the next interval
                }
            }
        }

        private readonly Lock _lock = new();
        private readonly LatencyHistogram _latency = new();
        private readonly LatencyHistogram _service = new();
        private readonly LatencyHistogram _single = new();
        private long[] _classes = new long[16];
        private long _requests;
        private long _errors;
        private long _mirrorRuns;
        private long _mirrorErrors;
        private double _confidenceSum;
        private double _confidenceSumSquares;
        private long _uncertain;
        private long _batchSizeSum;
        private bool _batchSizeKnown = true;

        public void Record(in PredictionObservation o)
        {
            lock (_lock)
            {
                if (o.Label >= _classes.Length)
                {
                    Array.Resize(ref _classes, Math.Min(MaxClasses, Math.Max(o.Label + 1, _classes.Length * 2)));
                }

                _requests++;
                _classes[o.Label]++;
                _confidenceSum += o.Confidence;
                _confidenceSumSquares += (double)o.Confidence * o.Confidence;
                if (o.IsUncertain)
                {
                    _uncertain++;
                }

                _latency.Record(o.Latency);
                RecordService(o.ServiceTime, o.BatchSize);
            }
        }

        public void RecordError(TimeSpan latency)
        {
            lock (_lock)
            {
                _requests++;
                _errors++;
                _latency.Record(latency);
            }
        }

        public void RecordLatency(TimeSpan latency, TimeSpan serviceTime, int batchSize)
        {
            lock (_lock)
            {
                _mirrorRuns++;
                _latency.Record(latency);
                RecordService(serviceTime, batchSize);
            }
        }

        public void RecordMirrorError(TimeSpan latency)
        {
            lock (_lock)
            {
                _mirrorRuns++;
                _mirrorErrors++;
                _latency.Record(latency);
            }
        }

        // Under _lock.
        private void RecordService(TimeSpan serviceTime, int batchSize)
        {
            if (serviceTime <= TimeSpan.Zero)
            {
                return;
            }

            _service.Record(serviceTime);
            _batchSizeSum += Math.Max(1, batchSize);
            if (batchSize <= 1)
            {
                _single.Record(serviceTime);
            }
        }

        public Taken Take(int classes, bool reset = true)
        {
            lock (_lock)
            {
                var counts = new long[Math.Max(classes, 0)];
                Array.Copy(_classes, counts, Math.Min(counts.Length, _classes.Length));
                var taken = new Taken(_requests, _errors, _confidenceSum, _confidenceSumSquares, _uncertain, counts, _latency.Quantile(0.50), _latency.Quantile(0.95), _latency.Quantile(0.99), _latency.Count, _service.Quantile(0.50), _service.Quantile(0.95), _service.Quantile(0.99), _service.Count, _service.Clone(), _single.Clone(), _batchSizeKnown && _service.Count > 0 ? _batchSizeSum / (double)_service.Count : null, _mirrorRuns, _mirrorErrors);
                if (reset)
                {
                    _requests = _errors = _uncertain = _mirrorRuns = _mirrorErrors = 0;
                    _confidenceSum = _confidenceSumSquares = 0;
                    Array.Clear(_classes);
                    _latency.Reset();
                    _service.Reset();
                    _single.Reset();
                    (_batchSizeSum, _batchSizeKnown) = (0, true);
                }

                return taken;
            }
        }

        public readonly record struct Taken(long Requests, long Errors, double ConfidenceSum, double ConfidenceSumSquares, long Uncertain, long[] Classes, TimeSpan P50, TimeSpan P95, TimeSpan P99, long LatencySamples, TimeSpan ServiceP50, TimeSpan ServiceP95, TimeSpan ServiceP99, long ServiceSamples, LatencyHistogram? Service = null, LatencyHistogram? Single = null, double? MeanBatchSize = null, long MirrorRuns = 0, long MirrorErrors = 0)
        {
            public VersionWindow ToWindow(string version) => new(version, Requests, Errors, ConfidenceSum, ConfidenceSumSquares, Uncertain, Classes, P50, P95, P99, LatencySamples, ServiceP50, ServiceP95, ServiceP99, ServiceSamples) { ServiceHistogram = Service, SingleServiceHistogram = Single, MeanBatchSize = MeanBatchSize, MirrorRuns = MirrorRuns, MirrorErrors = MirrorErrors };
        }
    }

    private sealed class PairAccumulator
    {
        public ObservationDelta.Paired Drain()
        {
            lock (_lock)
            {
                var delta = new ObservationDelta.Paired(_pairs, _agreements, [.. _candidate], [.. _stable], _diffSum, _diffSumSquares, _candidateUncertain, _stableUncertain) { StableConfidenceSum = double.IsNaN(_stableConfidenceSum) ? null : _stableConfidenceSum, StableSurePairs = _surePairs >= 0 ? _surePairs : null, StableSureAgreements = _sureAgreements >= 0 ? _sureAgreements : null, SureCandidate = _sureClassesKnown ? [.. _sureCandidate] : null, SureStable = _sureClassesKnown ? [.. _sureStable] : null, BothUncertain = _bothUncertain >= 0 ? _bothUncertain : null };
                _pairs = _agreements = _candidateUncertain = _stableUncertain = _surePairs = _sureAgreements = _bothUncertain = 0;
                _diffSum = _diffSumSquares = _stableConfidenceSum = 0;
                _sureClassesKnown = true;
                Array.Clear(_candidate);
                Array.Clear(_stable);
                Array.Clear(_sureCandidate);
                Array.Clear(_sureStable);
                return delta;
            }
        }

        public void Merge(ObservationDelta.Paired d)
        {
            lock (_lock)
            {
                var size = Math.Min(MaxClasses, Math.Max(d.Candidate.Length, d.Stable.Length));
                if (size > _candidate.Length)
                {
                    Resize(size);
                }

                for (var i = 0; i < Math.Min(d.Candidate.Length, _candidate.Length); i++)
                {
                    _candidate[i] += d.Candidate[i];
                }

                for (var i = 0; i < Math.Min(d.Stable.Length, _stable.Length); i++)
                {
                    _stable[i] += d.Stable[i];
                }

                _pairs += d.Pairs;
                _agreements += d.Agreements;
                _diffSum += d.DiffSum;
                _diffSumSquares += d.DiffSumSquares;
                _stableConfidenceSum += d.StableConfidenceSum ?? double.NaN;
                _surePairs = d.StableSurePairs is { } sure && _surePairs >= 0 ? _surePairs + sure : -1;
                _sureAgreements = d.StableSureAgreements is { } agreed && _sureAgreements >= 0 ? _sureAgreements + agreed : -1;
                if (d.SureCandidate is { } sureCandidate && d.SureStable is { } sureStable)
                {
                    for (var i = 0; i < Math.Min(sureCandidate.Length, _sureCandidate.Length); i++)
                    {
                        _sureCandidate[i] += sureCandidate[i];
                    }

                    for (var i = 0; i < Math.Min(sureStable.Length, _sureStable.Length); i++)
                    {
                        _sureStable[i] += sureStable[i];
                    }
                }
                else
                {
                    _sureClassesKnown = false;
                }

                _candidateUncertain += d.CandidateUncertain;
                _stableUncertain += d.StableUncertain;
                _bothUncertain = d.BothUncertain is { } both && _bothUncertain >= 0 ? _bothUncertain + both : -1;
            }
        }

        private readonly Lock _lock = new();
        private long[] _candidate = new long[16];
        private long[] _stable = new long[16];
        private long[] _sureCandidate = new long[16]; // class counts on the pairs the stable version was sure of
        private long[] _sureStable = new long[16];
        private bool _sureClassesKnown = true; // false once a replica that does not ship them was merged
        private long _pairs;
        private long _agreements;
        private double _diffSum;
        private double _diffSumSquares;
        private double _stableConfidenceSum; // NaN once a replica that does not ship it was merged
        private long _surePairs; // -1 once a replica that does not ship them was merged
        private long _sureAgreements;
        private long _candidateUncertain;
        private long _stableUncertain;
        private long _bothUncertain; // pairs both versions were uncertain on; -1 once a replica that does not ship them was merged

        public void Record(in PairedObservation p)
        {
            lock (_lock)
            {
                var needed = Math.Max(p.CandidateLabel, p.StableLabel) + 1;
                if (needed > _candidate.Length)
                {
                    Resize(Math.Min(MaxClasses, Math.Max(needed, _candidate.Length * 2)));
                }

                _pairs++;
                _candidate[p.CandidateLabel]++;
                _stable[p.StableLabel]++;
                if (p.CandidateLabel == p.StableLabel)
                {
                    _agreements++;
                }

                if (!p.StableUncertain && _surePairs >= 0)
                {
                    _surePairs++;
                    _sureAgreements += p.CandidateLabel == p.StableLabel ? 1 : 0;
                }

                if (!p.StableUncertain)
                {
                    _sureCandidate[p.CandidateLabel]++;
                    _sureStable[p.StableLabel]++;
                }

                var diff = (double)p.StableConfidence - p.CandidateConfidence;
                _diffSum += diff;
                _diffSumSquares += diff * diff;
                _stableConfidenceSum += p.StableConfidence;
                _candidateUncertain += p.CandidateUncertain ? 1 : 0;
                _stableUncertain += p.StableUncertain ? 1 : 0;
                if (p.CandidateUncertain && p.StableUncertain && _bothUncertain >= 0)
                {
                    _bothUncertain++;
                }
            }
        }

        public Taken Take(int classes, bool reset = true)
        {
            lock (_lock)
            {
                var c = new long[Math.Max(classes, 0)];
                var s = new long[c.Length];
                Array.Copy(_candidate, c, Math.Min(c.Length, _candidate.Length));
                Array.Copy(_stable, s, Math.Min(s.Length, _stable.Length));
                long[]? sc = null, ss = null;
                if (_sureClassesKnown)
                {
                    (sc, ss) = (new long[c.Length], new long[c.Length]);
                    Array.Copy(_sureCandidate, sc, Math.Min(sc.Length, _sureCandidate.Length));
                    Array.Copy(_sureStable, ss, Math.Min(ss.Length, _sureStable.Length));
                }

                var taken = new Taken(_pairs, _agreements, c, s, _diffSum, _diffSumSquares, _candidateUncertain, _stableUncertain, _stableConfidenceSum, _surePairs, _sureAgreements, sc, ss, _bothUncertain);
                if (reset)
                {
                    _pairs = _agreements = _candidateUncertain = _stableUncertain = _surePairs = _sureAgreements = _bothUncertain = 0;
                    _diffSum = _diffSumSquares = _stableConfidenceSum = 0;
                    _sureClassesKnown = true;
                    Array.Clear(_candidate);
                    Array.Clear(_stable);
                    Array.Clear(_sureCandidate);
                    Array.Clear(_sureStable);
                }

                return taken;
            }
        }

        public readonly record struct Taken(long Pairs, long Agreements, long[] Candidate, long[] Stable, double DiffSum, double DiffSumSquares, long CandidateUncertain, long StableUncertain, double StableConfidenceSum, long SurePairs, long SureAgreements, long[]? SureCandidate = null, long[]? SureStable = null, long BothUncertain = -1)
        {
            public PairedWindow ToWindow() => new(Pairs, Agreements, Candidate, Stable, DiffSum, DiffSumSquares, CandidateUncertain, StableUncertain) { StableConfidenceSum = StableConfidenceSum, StableSurePairs = SurePairs, StableSureAgreements = SureAgreements, StableSureCandidateClassCounts = SureCandidate, StableSureStableClassCounts = SureStable, BothUncertain = BothUncertain };
        }

        private void Resize(int size)
        {
            Array.Resize(ref _candidate, size);
            Array.Resize(ref _stable, size);
            Array.Resize(ref _sureCandidate, size);
            Array.Resize(ref _sureStable, size);
        }
    }
}
