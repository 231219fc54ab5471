namespace Har.Deployment;

/// <summary>Builds the gate list from <see cref="AnalysisOptions"/> and evaluates it on a snapshot.</summary>
internal sealed class RolloutAnalyzer
{
    private readonly IAnalysisGate[] _unpaired;
    private readonly IAnalysisGate[] _paired;

    public RolloutAnalyzer(AnalysisOptions options, IClassMixTest classMix, FeedbackStore? feedback = null)
    {
        ArgumentNullException.ThrowIfNull(options);
        options.Validate();
        var z = Statistics.NormalQuantile(options.ConfidenceLevel);
        var alpha = 1 - options.ConfidenceLevel;
        var common = new List<IAnalysisGate>();
        if (options.MaxErrorRate is { } e)
        {
            common.Add(new ErrorRateGate(e, options.MaxErrorRateIncrease, options.MinRequests, z, alpha));
        }

        if (options.LatencyP95Budget is not null || options.LatencyP99Budget is not null || options.MaxLatencyRatio is not null || options.MaxLatencyInflation is not null)
        {
            common.Add(new LatencyGate(options.LatencyP95Budget, options.LatencyP99Budget, options.MaxLatencyRatio, options.MaxLatencyInflation, options.MinLatencySamples, alpha));
        }

        if (options.MaxConfidenceDrop is { } drop)
        {
            common.Add(DifferenceGate.Confidence(drop, options.MinPredictions, z));
        }

        if (options.MaxUncertainRateIncrease is { } inc)
        {
            common.Add(DifferenceGate.Uncertainty(inc, options.MinPredictions, z));
        }

        if (options.MaxClassMixDistance is { } js)
        {
            common.Add(new ClassMixGate(classMix, js, options.ClassMixAlpha, options.MinPredictions));
        }

        if (options.MaxAccuracyDrop is { } accuracy && feedback is not null)
        {
            common.Add(new AccuracyGate(feedback, accuracy, options.MinLabelledWindows, z, Statistics.NormalQuantile(1 - (alpha * alpha))));
        }

        _unpaired = [.. common, .. options.Gates];
        if (options.MinAgreementRate is { } agreement)
        {
            common.Add(new AgreementGate(agreement, options.MinPredictions, z, Statistics.NormalQuantile(1 - (alpha * alpha))));
        }

        _paired = [.. common, .. options.Gates];
    }

    /// <summary>
    /// Evaluates the gates whose decisive failures are judged on the snapshot's counts and samples alone (error rate,
    /// latency, agreement) on a snapshot that joins a failing streak's intervals: the accuracy gate reads its labels from
    /// the feedback store whatever the snapshot, and user gates are evaluated once per interval, never again on a merge.
    /// </summary>
    /// <param name="snapshot">The joined intervals.</param>
    /// <param name="paired">Whether the step produces paired comparisons.</param>
    /// <returns>The failures among those gates that are decisive (counted, at α²); empty when there are none.</returns>
    public IReadOnlyList<GateResult> DecisiveOnJoinedSamples(AnalysisSnapshot snapshot, bool paired)
    {
        var decisive = new List<GateResult>();
        foreach (var gate in paired ? _paired : _unpaired)
        {
            if (gate is ErrorRateGate or LatencyGate or AgreementGate && gate.Evaluate(snapshot) is { Verdict: GateVerdict.Fail, IsCounted: true, IsDecisive: true } failed)
            {
                decisive.Add(failed);
            }
        }

        return decisive;
    }

    /// <summary>Evaluates every gate; a gate that throws is reported as <see cref="GateVerdict.Unmeasurable"/>.</summary>
    /// <param name="snapshot">The interval.</param>
    /// <param name="paired">Whether the step produces paired comparisons (shadow or mirrored traffic), which enables the agreement gate.</param>
    public AnalysisResult Evaluate(AnalysisSnapshot snapshot, bool paired)
    {
        var gates = paired ? _paired : _unpaired;
        var results = new GateResult[gates.Length];
        for (var i = 0; i < gates.Length; i++)
        {
            try
            {
                results[i] = gates[i].Evaluate(snapshot) ?? throw new InvalidOperationException($"Gate '{gates[i].Name}' returned no result.");
            }
#pragma warning disable CA1031 // a user gate's failure must become a verdict, not crash the controller
            catch (Exception ex)
#pragma warning restore CA1031
            {
                results[i] = new GateResult(gates[i].Name, GateVerdict.Unmeasurable, $"Gate '{gates[i].Name}' failed to evaluate: {ex.GetType().Name}: {ex.Message}", new Dictionary<string, double>());
            }
        }

        // A decisive accuracy verdict on ground truth outranks agreement and class mix; too few labels count for nothing.
        var counted = AccuracyGate.Counted(results);
        return new AnalysisResult(AnalysisResult.Combine(counted), results, snapshot.Start, snapshot.End, snapshot.Candidate.Requests, snapshot.Stable.Requests, snapshot.Paired.Pairs);
    }
}
