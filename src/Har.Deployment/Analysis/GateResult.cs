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
/// <param name="Gate">The gate's name.</param>
/// <param name="Verdict">The verdict.</param>
/// <param name="Message">One sentence that says what was measured and against which threshold.</param>
/// <param name="Evidence">The numbers behind the verdict (sample sizes, statistics, thresholds).</param>
public sealed record GateResult(string Gate, GateVerdict Verdict, string Message, IReadOnlyDictionary<string, double> Evidence);

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

/// <summary>The combined outcome of all gates for one interval.</summary>
/// <param name="Verdict">Fail if any gate failed; else Unmeasurable if any was; else Inconclusive if any was; else Pass.</param>
/// <param name="Gates">Each gate's result.</param>
/// <param name="Start">The start of the interval.</param>
/// <param name="End">The end of the interval.</param>
public sealed record AnalysisResult(GateVerdict Verdict, IReadOnlyList<GateResult> Gates, DateTimeOffset Start, DateTimeOffset End)
{
    /// <summary>Gets the candidate's requests (predictions and errors) in the interval.</summary>
    public long CandidateRequests { get; init; }

    /// <summary>Gets the stable version's requests (predictions and errors) in the interval.</summary>
    public long StableRequests { get; init; }

    /// <summary>Gets the windows both versions scored in the interval (shadow or mirror pairs).</summary>
    public long PairedWindows { get; init; }

    /// <summary>Returns the verdict, the sample counts and each gate's verdict and message on one line.</summary>
    /// <returns>A summary such as <c>Fail (candidate 412, stable 3,702, paired 412): error-rate Fail: …</c>.</returns>
    public override string ToString() =>
        string.Create(System.Globalization.CultureInfo.InvariantCulture, $"{Verdict} (candidate {CandidateRequests}, stable {StableRequests}, paired {PairedWindows}): {string.Join("; ", Gates.Select(g => $"{g.Gate} {g.Verdict}: {g.Message}"))}");

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
