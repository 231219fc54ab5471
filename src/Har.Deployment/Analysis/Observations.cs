namespace Har.Deployment;

/// <summary>One prediction a model version produced, as the rollout analysis sees it.</summary>
/// <param name="Label">The predicted class index.</param>
/// <param name="Confidence">The top probability (0 … 1).</param>
/// <param name="IsUncertain">Whether the confidence is below the uncertainty threshold.</param>
/// <param name="Latency">How long the caller waited for the prediction (queueing and batching included).</param>
/// <param name="ServiceTime">The model's own inference time for this window (its share of the batch run, from a monotonic clock), or <see cref="TimeSpan.Zero"/> when the host does not measure it.</param>
/// <param name="BatchSize">The windows in the run that scored this one (1 = a single-window run; 0 or 1 when unknown).</param>
internal readonly record struct PredictionObservation(int Label, float Confidence, bool IsUncertain, TimeSpan Latency, TimeSpan ServiceTime = default, int BatchSize = 1);

/// <summary>Two versions' predictions on the same window (candidate or shadow versus the stable version).</summary>
/// <param name="CandidateLabel">The candidate's predicted class.</param>
/// <param name="CandidateConfidence">The candidate's top probability.</param>
/// <param name="CandidateUncertain">Whether the candidate's prediction is uncertain.</param>
/// <param name="StableLabel">The stable version's predicted class.</param>
/// <param name="StableConfidence">The stable version's top probability.</param>
/// <param name="StableUncertain">Whether the stable version's prediction is uncertain.</param>
internal readonly record struct PairedObservation(int CandidateLabel, float CandidateConfidence, bool CandidateUncertain, int StableLabel, float StableConfidence, bool StableUncertain);

/// <summary>What one version did during one analysis interval.</summary>
public sealed class VersionWindow
{
    internal VersionWindow(string version, long requests, long errors, double confidenceSum, double confidenceSumSquares, long uncertain, long[] classCounts, TimeSpan p50, TimeSpan p95, TimeSpan p99, long latencySamples, TimeSpan serviceP50 = default, TimeSpan serviceP95 = default, TimeSpan serviceP99 = default, long serviceSamples = 0)
    {
        ServiceTimeP50 = serviceP50;
        ServiceTimeP95 = serviceP95;
        ServiceTimeP99 = serviceP99;
        ServiceTimeSamples = serviceSamples;
        Version = version;
        Requests = requests;
        Errors = errors;
        ConfidenceSum = confidenceSum;
        ConfidenceSumSquares = confidenceSumSquares;
        Uncertain = uncertain;
        ClassCounts = classCounts;
        LatencyP50 = p50;
        LatencyP95 = p95;
        LatencyP99 = p99;
        LatencySamples = latencySamples;
    }

    /// <summary>Gets the version.</summary>
    public string Version { get; }

    /// <summary>Gets the number of requests (successful predictions plus errors).</summary>
    public long Requests { get; }

    /// <summary>Gets the number of failed requests.</summary>
    public long Errors { get; }

    /// <summary>Gets the number of successful predictions.</summary>
    public long Predictions => Requests - Errors;

    /// <summary>Gets the error rate (0 when there were no requests).</summary>
    internal double ErrorRate => Requests == 0 ? 0 : (double)Errors / Requests;

    /// <summary>Gets the mean confidence of the successful predictions (NaN when there were none).</summary>
    public double MeanConfidence => Predictions == 0 ? double.NaN : ConfidenceSum / Predictions;

    /// <summary>Gets the number of predictions below the uncertainty threshold.</summary>
    public long Uncertain { get; }

    /// <summary>Gets the share of uncertain predictions (NaN when there were none).</summary>
    internal double UncertainRate => Predictions == 0 ? double.NaN : (double)Uncertain / Predictions;

    /// <summary>Gets the number of predictions of each class.</summary>
    public IReadOnlyList<long> ClassCounts { get; }

    /// <summary>Gets the median of what callers waited (queueing and batching included; shared with the other version when both queue on one machine).</summary>
    internal TimeSpan LatencyP50 { get; }

    /// <summary>Gets the 95th percentile of what callers waited.</summary>
    public TimeSpan LatencyP95 { get; }

    /// <summary>Gets the 99th percentile of what callers waited.</summary>
    public TimeSpan LatencyP99 { get; }

    /// <summary>Gets the number of wait samples (served and mirrored runs).</summary>
    public long LatencySamples { get; }

    /// <summary>Gets the median service time per window: the model's own inference time (its share of the batch run, monotonic clock), without queueing. The latency gate judges this.</summary>
    public TimeSpan ServiceTimeP50 { get; }

    /// <summary>Gets the 95th-percentile service time per window.</summary>
    public TimeSpan ServiceTimeP95 { get; }

    /// <summary>Gets the 99th-percentile service time per window.</summary>
    internal TimeSpan ServiceTimeP99 { get; }

    /// <summary>Gets the number of service-time samples (served and mirrored runs); 0 when the host does not measure service time.</summary>
    public long ServiceTimeSamples { get; }

    /// <summary>Gets the service-time histogram of the interval, for distribution-free confidence bounds of its quantiles (<see langword="null"/> when not kept).</summary>
    internal LatencyHistogram? ServiceHistogram { get; init; }

    /// <summary>
    /// Gets the service times of single-window runs only (<see cref="Har.Inference.Prediction.BatchSize"/> 1): a window's
    /// share of a batched run is cheaper than a single-window run, and the version with more traffic is batched more,
    /// so medians of the two versions (and each against its single-window baseline) are compared on these.
    /// </summary>
    internal LatencyHistogram? SingleServiceHistogram { get; init; }

    /// <summary>Gets the version's mirrored runs in the interval (the stable version on windows the candidate served), failed ones included: not requests, but a sample of its error rate on the candidate's traffic.</summary>
    internal long MirrorRuns { get; init; }

    /// <summary>Gets the failed ones among <see cref="MirrorRuns"/>.</summary>
    internal long MirrorErrors { get; init; }

    /// <summary>Gets the mean size of the runs the <see cref="ServiceTimeSamples"/> windows were scored in (1 = all alone); <see langword="null"/> when unknown.</summary>
    internal double? MeanBatchSize { get; init; }

    internal double ConfidenceSum { get; }

    internal double ConfidenceSumSquares { get; }
}

/// <summary>Paired comparisons of the candidate (or shadow) and the stable version on identical windows during one interval.</summary>
public sealed class PairedWindow
{
    internal PairedWindow(long pairs, long agreements, long[] candidateClassCounts, long[] stableClassCounts, double diffSum, double diffSumSquares, long candidateUncertain, long stableUncertain)
    {
        Pairs = pairs;
        Agreements = agreements;
        CandidateClassCounts = candidateClassCounts;
        StableClassCounts = stableClassCounts;
        ConfidenceDifferenceSum = diffSum;
        ConfidenceDifferenceSumSquares = diffSumSquares;
        CandidateUncertain = candidateUncertain;
        StableUncertain = stableUncertain;
    }

    /// <summary>Gets the number of windows both versions predicted.</summary>
    public long Pairs { get; }

    /// <summary>Gets the number of windows on which both predicted the same class.</summary>
    public long Agreements { get; }

    /// <summary>Gets the agreement rate (NaN when there are no pairs).</summary>
    internal double AgreementRate => Pairs == 0 ? double.NaN : (double)Agreements / Pairs;

    /// <summary>Gets the candidate's class counts on the paired windows.</summary>
    public IReadOnlyList<long> CandidateClassCounts { get; }

    /// <summary>Gets the stable version's class counts on the same windows.</summary>
    public IReadOnlyList<long> StableClassCounts { get; }

    /// <summary>Gets the mean of (stable confidence − candidate confidence) over the pairs: the candidate's confidence drop.</summary>
    public double MeanConfidenceDrop => Pairs == 0 ? double.NaN : ConfidenceDifferenceSum / Pairs;

    /// <summary>Gets how many paired predictions of the candidate were uncertain.</summary>
    public long CandidateUncertain { get; }

    /// <summary>Gets how many paired predictions of the stable version were uncertain.</summary>
    public long StableUncertain { get; }

    internal double ConfidenceDifferenceSum { get; }

    internal double ConfidenceDifferenceSumSquares { get; }

    /// <summary>Gets the sum of the stable version's confidence over the pairs (NaN when a replica did not ship it).</summary>
    internal double StableConfidenceSum { get; init; } = double.NaN;

    /// <summary>Gets the pairs on which the stable version was not uncertain (−1 when a replica did not ship them).</summary>
    internal long StableSurePairs { get; init; } = -1;

    /// <summary>Gets the agreements among <see cref="StableSurePairs"/> (−1 when unknown).</summary>
    internal long StableSureAgreements { get; init; } = -1;

    /// <summary>Gets the candidate's class counts on the <see cref="StableSurePairs"/> (<see langword="null"/> when a replica did not ship them).</summary>
    internal IReadOnlyList<long>? StableSureCandidateClassCounts { get; init; }

    /// <summary>Gets the stable version's class counts on the <see cref="StableSurePairs"/> (<see langword="null"/> when unknown).</summary>
    internal IReadOnlyList<long>? StableSureStableClassCounts { get; init; }

    /// <summary>Gets the pairs on which both versions were uncertain (−1 when a replica did not ship them): with <see cref="CandidateUncertain"/> and <see cref="StableUncertain"/>, the discordant pairs a paired test of the uncertain rates needs.</summary>
    internal long BothUncertain { get; init; } = -1;

    /// <summary>Gets the stable version's mean confidence over the pairs (NaN when there are none or it is unknown).</summary>
    internal double StableMeanConfidence => Pairs == 0 ? double.NaN : StableConfidenceSum / Pairs;
}

/// <summary>Everything the gates judge at the end of one analysis interval.</summary>
public sealed class AnalysisSnapshot
{
    internal AnalysisSnapshot(DateTimeOffset start, DateTimeOffset end, VersionWindow candidate, VersionWindow stable, PairedWindow paired, IReadOnlyList<string> labels, TimeSpan? candidateBaselineLatency = null, TimeSpan? stableBaselineLatency = null, OutputReference? candidateReference = null, OutputReference? stableReference = null)
    {
        CandidateReference = candidateReference;
        StableReference = stableReference;
        CandidateBaselineLatency = candidateBaselineLatency;
        StableBaselineLatency = stableBaselineLatency;
        Start = start;
        End = end;
        Candidate = candidate;
        Stable = stable;
        Paired = paired;
        Labels = labels;
    }

    /// <summary>Gets the start of the interval.</summary>
    public DateTimeOffset Start { get; }

    /// <summary>Gets the end of the interval.</summary>
    public DateTimeOffset End { get; }

    /// <summary>Gets what the candidate (or shadow) version did.</summary>
    public VersionWindow Candidate { get; }

    /// <summary>Gets what the stable version (the champion) did.</summary>
    public VersionWindow Stable { get; }

    /// <summary>Gets the paired comparisons on identical windows.</summary>
    public PairedWindow Paired { get; }

    /// <summary>Gets the class names, indexed like the class counts (empty when unknown).</summary>
    public IReadOnlyList<string> Labels { get; }

    /// <summary>Gets the candidate's single-window median service time (no queueing), measured by the host under the current load, when known.</summary>
    public TimeSpan? CandidateBaselineLatency { get; }

    /// <summary>Gets the stable version's single-window median service time, measured the same way, when known.</summary>
    public TimeSpan? StableBaselineLatency { get; }

    /// <summary>Gets the candidate's own outputs on the known reference windows (its calibration), when known.</summary>
    internal OutputReference? CandidateReference { get; }

    /// <summary>Gets the stable version's own outputs on the same known reference windows, when known.</summary>
    internal OutputReference? StableReference { get; }
}

/// <summary>
/// A model version's outputs on known reference windows: its mean confidence and uncertain rate, overall and for
/// the windows it predicted as each class. Two architectures are calibrated differently (a model trained with label
/// smoothing is less confident everywhere), and differently by activity (the bundled CNN is far less confident than
/// the CNN-BiLSTM on sitting and standing, about as confident on walking), so confidence is judged against each
/// version's own reference, for the activities it predicted in the interval, not across versions.
/// </summary>
/// <param name="MeanConfidence">The mean top probability on the reference windows.</param>
/// <param name="UncertainRate">The share of reference windows predicted below the uncertainty threshold.</param>
/// <param name="Windows">The number of reference windows.</param>
internal readonly record struct OutputReference(double MeanConfidence, double UncertainRate, int Windows)
{
    /// <summary>The fewest reference windows predicted as a class for that class's own figures to stand in an expectation; below it the overall figures stand.</summary>
    internal const int MinClassWindows = 8;

    /// <summary>Gets the reference windows the version predicted as each class (empty when not kept: every class falls back to the overall figures).</summary>
    public IReadOnlyList<int> ClassWindows { get; init; } = [];

    /// <summary>Gets the mean confidence of the reference windows predicted as each class (NaN for a class never predicted).</summary>
    public IReadOnlyList<double> ClassConfidence { get; init; } = [];

    /// <summary>Gets the uncertain rate of the reference windows predicted as each class (NaN for a class never predicted).</summary>
    public IReadOnlyList<double> ClassUncertainRate { get; init; } = [];

    /// <summary>The reference of one version's predictions on the reference windows, overall and per predicted class.</summary>
    /// <param name="classes">The number of classes.</param>
    /// <param name="predictedClass">The predicted class of each reference window.</param>
    /// <param name="confidence">The top probability of each reference window.</param>
    /// <param name="uncertain">Whether each reference window's prediction was uncertain.</param>
    public static OutputReference From(int classes, ReadOnlySpan<int> predictedClass, ReadOnlySpan<float> confidence, ReadOnlySpan<bool> uncertain)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(predictedClass.Length);
        if (confidence.Length != predictedClass.Length || uncertain.Length != predictedClass.Length)
        {
            throw new ArgumentException($"{predictedClass.Length} predicted classes, {confidence.Length} confidences and {uncertain.Length} uncertainty flags; one of each per reference window was expected.", nameof(confidence));
        }

        var windows = new int[classes];
        var confidenceSum = new double[classes];
        var uncertainCount = new int[classes];
        double total = 0;
        var totalUncertain = 0;
        for (var i = 0; i < predictedClass.Length; i++)
        {
            var k = predictedClass[i];
            if ((uint)k >= (uint)classes)
            {
                throw new ArgumentOutOfRangeException(nameof(predictedClass), k, $"Reference window {i} was predicted as class {k}; classes 0 to {classes - 1} were expected.");
            }

            windows[k]++;
            confidenceSum[k] += confidence[i];
            uncertainCount[k] += uncertain[i] ? 1 : 0;
            total += confidence[i];
            totalUncertain += uncertain[i] ? 1 : 0;
        }

        var classConfidence = new double[classes];
        var classUncertain = new double[classes];
        for (var k = 0; k < classes; k++)
        {
            classConfidence[k] = windows[k] == 0 ? double.NaN : confidenceSum[k] / windows[k];
            classUncertain[k] = windows[k] == 0 ? double.NaN : (double)uncertainCount[k] / windows[k];
        }

        var n = predictedClass.Length;
        return new OutputReference(total / n, (double)totalUncertain / n, n) { ClassWindows = windows, ClassConfidence = classConfidence, ClassUncertainRate = classUncertain };
    }

    /// <summary>
    /// The mean confidence (or uncertain rate) the version would show on the reference windows if it predicted the classes in
    /// <paramref name="classCounts"/>' proportions: Σₖ (its share of predictions of class k) × (its reference figure for class k),
    /// with the overall figure for a class predicted on fewer than <see cref="MinClassWindows"/> reference windows.
    /// </summary>
    /// <param name="uncertainty">The uncertain rate (<see langword="true"/>) or the mean confidence.</param>
    /// <param name="classCounts">The version's predictions of each class in the interval.</param>
    /// <returns>The expectation, and the share of the interval's predictions whose class had its own reference figure.</returns>
    public (double Expected, double ClassCovered) Expected(bool uncertainty, IReadOnlyList<long> classCounts)
    {
        var overall = uncertainty ? UncertainRate : MeanConfidence;
        var perClass = uncertainty ? ClassUncertainRate : ClassConfidence;
        double total = 0, sum = 0, covered = 0;
        for (var k = 0; k < classCounts.Count; k++)
        {
            var count = classCounts[k];
            if (count <= 0)
            {
                continue;
            }

            total += count;
            if (k < ClassWindows.Count && ClassWindows[k] >= MinClassWindows)
            {
                sum += count * perClass[k];
                covered += count;
            }
            else
            {
                sum += count * overall;
            }
        }

        return total == 0 ? (overall, 0) : (sum / total, covered / total);
    }
}
