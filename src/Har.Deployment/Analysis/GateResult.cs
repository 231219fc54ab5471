namespace Har.Deployment;

/// <summary>What a gate concluded about one analysis interval.</summary>
public enum GateVerdict
{
    /// <summary>The candidate is good enough on this criterion, with the required evidence.</summary>
    Pass,

    /// <summary>The candidate is worse than allowed, with statistical evidence.</summary>
    Fail,

    /// <summary>There are data, but too few to decide (below the gate's minimum sample size, or the confidence interval straddles the threshold).</summary>
    Inconclusive,

    /// <summary>Nothing could be measured: no data at all, or the measurement itself failed.</summary>
    Unmeasurable,
}

/// <summary>A gate's verdict with the evidence it was based on (written to the audit log).</summary>
public sealed class GateResult
{
    /// <summary>Initializes a new instance of the <see cref="GateResult"/> class.</summary>
    /// <param name="gate">The gate's name.</param>
    /// <param name="verdict">The verdict.</param>
    /// <param name="message">One sentence that says what was measured and against which threshold.</param>
    /// <param name="evidence">The numbers behind the verdict (sample sizes, statistics, thresholds).</param>
    public GateResult(string gate, GateVerdict verdict, string message, IReadOnlyDictionary<string, double> evidence)
    {
        ArgumentNullException.ThrowIfNull(gate);
        ArgumentNullException.ThrowIfNull(message);
        ArgumentNullException.ThrowIfNull(evidence);
        Gate = gate;
        Verdict = verdict;
        Message = message;
        Evidence = evidence;
    }

    /// <summary>Gets the gate's name.</summary>
    public string Gate { get; }

    /// <summary>Gets the verdict.</summary>
    public GateVerdict Verdict { get; }

    /// <summary>Gets one sentence that says what was measured and against which threshold.</summary>
    public string Message { get; }

    /// <summary>Gets the numbers behind the verdict (sample sizes, statistics, thresholds).</summary>
    public IReadOnlyDictionary<string, double> Evidence { get; }

    /// <summary>
    /// Gets whether the verdict counts toward the interval's combined verdict. A built-in gate reports but
    /// does not count a verdict it cannot attribute to the candidate (the confidence and uncertain-rate gates
    /// without a calibration reference); its message then starts with <c>not counted</c>.
    /// </summary>
    internal bool IsCounted { get; init; } = true;

    /// <summary>
    /// Gets whether a failure found below the gate's minimum sample size by an exact test is conclusive at the square of
    /// the significance level, (1 − confidence)²: as strong as two independent failing intervals, so the controller counts
    /// it as two toward its failure threshold.
    /// </summary>
    internal bool IsDecisive { get; init; }

    /// <inheritdoc />
    public override string ToString() => $"{Gate} {Verdict}: {Message}";
}

/// <summary>A criterion a rollout must pass at every analysis interval. Implement it to add your own gate.</summary>
public interface IAnalysisGate
{
    /// <summary>Gets the gate's name (used in metrics and the audit log).</summary>
    string Name { get; }

    /// <summary>Judges one interval.</summary>
    /// <param name="snapshot">What the candidate and the stable version did during the interval.</param>
    /// <returns>The verdict with its evidence. Throwing is reported as <see cref="GateVerdict.Unmeasurable"/>.</returns>
    GateResult Evaluate(AnalysisSnapshot snapshot);
}

/// <summary>The combined outcome of all gates for one interval, with the sample counts it was judged on.</summary>
public sealed class AnalysisResult
{
    [System.Text.Json.Serialization.JsonConstructor]
    internal AnalysisResult(GateVerdict verdict, IReadOnlyList<GateResult> gates, DateTimeOffset start, DateTimeOffset end, long candidateRequests = 0, long stableRequests = 0, long pairedWindows = 0)
    {
        Verdict = verdict;
        Gates = gates;
        Start = start;
        End = end;
        CandidateRequests = candidateRequests;
        StableRequests = stableRequests;
        PairedWindows = pairedWindows;
    }

    /// <summary>
    /// Gets the combined verdict of the gates that count: Fail if any failed; else Unmeasurable if any was; else Inconclusive if any was; else Pass.
    /// The accuracy gate (ground-truth feedback) counts only when it passes or fails; when it passes, the agreement, class-mix, confidence and
    /// uncertain-rate gates do not count. The confidence and uncertain-rate gates do not count without a calibration reference (smoke-test windows).
    /// </summary>
    public GateVerdict Verdict { get; }

    /// <summary>Gets each gate's result, with its evidence.</summary>
    public IReadOnlyList<GateResult> Gates { get; }

    /// <summary>Gets the start of the interval.</summary>
    public DateTimeOffset Start { get; }

    /// <summary>Gets the end of the interval.</summary>
    public DateTimeOffset End { get; }

    /// <summary>Gets the candidate's requests (predictions and errors) in the interval.</summary>
    public long CandidateRequests { get; }

    /// <summary>Gets the stable version's requests (predictions and errors) in the interval.</summary>
    public long StableRequests { get; }

    /// <summary>Gets the windows both versions scored in the interval (shadow or mirror pairs).</summary>
    public long PairedWindows { get; }

    /// <summary>Returns the verdict, the sample counts and each gate's verdict and message on one line.</summary>
    /// <returns>A summary such as <c>Fail (candidate 412, stable 3702, paired 412): error-rate Fail: …</c>.</returns>
    public override string ToString() =>
        string.Create(System.Globalization.CultureInfo.InvariantCulture, $"{Verdict} (candidate {CandidateRequests}, stable {StableRequests}, paired {PairedWindows}): {string.Join("; ", Gates.Select(g => g.ToString()))}");

    internal static GateVerdict Combine(IReadOnlyList<GateResult> gates)
    {
        var verdict = GateVerdict.Pass;
        foreach (var gate in gates)
        {
            verdict = gate.Verdict switch
            {
                GateVerdict.Fail => GateVerdict.Fail,
                GateVerdict.Unmeasurable when verdict != GateVerdict.Fail => GateVerdict.Unmeasurable,
                GateVerdict.Inconclusive when verdict == GateVerdict.Pass => GateVerdict.Inconclusive,
                _ => verdict,
            };
        }

        return verdict;
    }
}
