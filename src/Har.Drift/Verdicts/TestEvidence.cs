using System.Text.Json.Serialization;
using System.Globalization;

namespace Har.Drift;

/// <summary>The evidence of one test: enough to replay the decision.</summary>
public sealed class TestEvidence
{
    internal TestEvidence(string test, double statistic, double pValue, double adjustedPValue, double floor, bool significant, bool aboveFloor, double[]? innerEdges = null, long[]? referenceCounts = null, long[]? currentCounts = null)
    {
        Test = test;
        Statistic = statistic;
        PValue = pValue;
        AdjustedPValue = adjustedPValue;
        Floor = floor;
        Significant = significant;
        AboveFloor = aboveFloor;
        InnerEdges = innerEdges;
        ReferenceCounts = referenceCounts;
        CurrentCounts = currentCounts;
    }

    /// <summary>Gets the test: <c>ks</c> or <c>psi</c> (input channels); <c>class_mix</c>, <c>confidence</c> or <c>entropy</c> (model outputs).</summary>
    public string Test { get; }

    /// <summary>Gets the statistic: KS D, PSI, or the Jensen–Shannon distance of the class mix.</summary>
    public double Statistic { get; }

    /// <summary>Gets the raw p-value, computed at the effective sample size (KS: finite-n Kolmogorov distribution; PSI: χ²(B − 1) of PSI·n_eff'; class mix: χ² homogeneity).</summary>
    [JsonInclude]
    internal double PValue { get; }

    /// <summary>Gets the p-value after the multiple-testing correction.</summary>
    public double AdjustedPValue { get; }

    /// <summary>Gets the effect-size floor the statistic had to reach.</summary>
    public double Floor { get; }

    /// <summary>Gets a value indicating whether the adjusted p-value is at or below alpha.</summary>
    public bool Significant { get; }

    /// <summary>Gets a value indicating whether the statistic is at or above the floor.</summary>
    public bool AboveFloor { get; }

    /// <summary>Gets, for PSI, the bin edges (quantiles of the matched reference); otherwise null.</summary>
    [JsonInclude]
    internal double[]? InnerEdges { get; }

    /// <summary>Gets, for PSI and the class mix, the reference counts per bin or class; otherwise null.</summary>
    [JsonInclude]
    internal long[]? ReferenceCounts { get; }

    /// <summary>Gets, for PSI and the class mix, the current counts per bin or class; otherwise null.</summary>
    [JsonInclude]
    internal long[]? CurrentCounts { get; }

    /// <summary>Returns e.g. <c>ks 0.231 (floor 0.120, p 1.2e-05, adj. p 7.4e-05)</c>.</summary>
    /// <returns>The summary.</returns>
    public override string ToString() =>
        string.Create(CultureInfo.InvariantCulture, $"{Test} {Statistic:F3} (floor {Floor:F3}, p {PValue:G3}, adj. p {AdjustedPValue:G3})");
}

/// <summary>The verdict on one input channel, with its evidence.</summary>
public sealed class ChannelVerdict
{
    internal ChannelVerdict(string channel, DriftVerdict verdict, int n, double effectiveN, double referenceEffectiveN, TestEvidence? ks, TestEvidence? psi)
    {
        Channel = channel;
        Verdict = verdict;
        N = n;
        EffectiveN = effectiveN;
        ReferenceEffectiveN = referenceEffectiveN;
        Ks = ks;
        Psi = psi;
    }

    /// <summary>Gets the channel name.</summary>
    public string Channel { get; }

    /// <summary>Gets the verdict.</summary>
    public DriftVerdict Verdict { get; }

    /// <summary>Gets the number of finite samples in the current window.</summary>
    public int N { get; }

    /// <summary>Gets the effective sample size of the current window (autocorrelation-aware).</summary>
    public double EffectiveN { get; }

    /// <summary>Gets the effective sample size of the matched reference windows.</summary>
    [JsonInclude]
    internal double ReferenceEffectiveN { get; }

    /// <summary>Gets the Kolmogorov–Smirnov evidence (null when insufficient).</summary>
    public TestEvidence? Ks { get; }

    /// <summary>Gets the PSI evidence (null when insufficient).</summary>
    public TestEvidence? Psi { get; }

    /// <summary>Gets the drift score exported as <c>har_drift_score{channel}</c>: the KS effect size D (0 when insufficient).</summary>
    public double Score => Ks?.Statistic ?? 0;

    /// <summary>Returns e.g. <c>ax Drifted: ks 0.231 (…), psi 0.41 (…), n 3000 (n_eff 210)</c>.</summary>
    /// <returns>The summary.</returns>
    public override string ToString() => Ks is null
        ? string.Create(CultureInfo.InvariantCulture, $"{Channel} {Verdict}: n {N}")
        : string.Create(CultureInfo.InvariantCulture, $"{Channel} {Verdict}: {Ks}, {Psi}, n {N} (n_eff {EffectiveN:F0})");
}
