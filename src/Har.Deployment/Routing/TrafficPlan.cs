namespace Har.Deployment;

/// <summary>
/// An immutable traffic plan: which model version serves which share of the streams, and which version
/// (if any) receives a shadow copy. Plans are never changed in place; a <see cref="TrafficRouter"/>
/// swaps whole plans atomically, so a reader sees either the old plan or the new one, never a mix.
/// </summary>
/// <remarks>
/// Assignment is sticky and monotone: a stream key is hashed (XXH3-64 of its UTF-16 code units, seeded
/// with the plan's <see cref="Salt"/>) into one of <see cref="BucketCount"/> buckets, and buckets <c>[0, CandidateBuckets)</c> go to the
/// candidate. Growing the candidate's weight only adds buckets, so a device on the candidate at 10 %
/// is still on it at 50 %; keeping the salt for the whole rollout keeps every device where it was.
/// </remarks>
internal sealed class TrafficPlan
{
    /// <summary>The number of buckets keys are hashed into (weights have a resolution of 0.01 %).</summary>
    internal const int BucketCount = 10_000;

    /// <summary>Initializes a new instance of the <see cref="TrafficPlan"/> class.</summary>
    /// <param name="stable">The version that serves every key not assigned to the candidate (the champion).</param>
    /// <param name="candidate">The candidate version, or <see langword="null"/> when only <paramref name="stable"/> serves.</param>
    /// <param name="candidateBuckets">How many of the <see cref="BucketCount"/> buckets the candidate serves (0 … 10,000; 1,000 = 10 %).</param>
    /// <param name="salt">The per-rollout salt mixed into every key's hash; see <see cref="SaltFor"/>.</param>
    /// <param name="shadow">A version that receives a copy of the windows of the stable version's traffic and whose predictions are compared, never returned; or <see langword="null"/>.</param>
    /// <param name="shadowBuckets">How many buckets of the stable version's traffic are mirrored to <paramref name="shadow"/> (0 … 10,000).</param>
    /// <param name="mirrorCandidateToStable">Whether windows served by the candidate are also run on the stable version (paired comparison on identical inputs; the stable result is never returned).</param>
    /// <param name="revision">A number that identifies the plan (the rollout's revision); informational.</param>
    /// <exception cref="ArgumentException">A version name is empty, a bucket count is out of range, or a candidate/shadow share is given without its version.</exception>
    internal TrafficPlan(
        string stable,
        string? candidate = null,
        int candidateBuckets = 0,
        ulong salt = 0,
        string? shadow = null,
        int shadowBuckets = 0,
        bool mirrorCandidateToStable = false,
        long revision = 0)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(stable);
        ArgumentOutOfRangeException.ThrowIfNegative(candidateBuckets);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(candidateBuckets, BucketCount);
        ArgumentOutOfRangeException.ThrowIfNegative(shadowBuckets);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(shadowBuckets, BucketCount);
        if (candidateBuckets > 0 && string.IsNullOrWhiteSpace(candidate))
        {
            throw new ArgumentException($"The plan gives the candidate {candidateBuckets} bucket(s) but names no candidate version; expected a candidate or 0 buckets.", nameof(candidate));
        }

        if (shadowBuckets > 0 && string.IsNullOrWhiteSpace(shadow))
        {
            throw new ArgumentException($"The plan mirrors {shadowBuckets} bucket(s) but names no shadow version; expected a shadow version or 0 buckets.", nameof(shadow));
        }

        if (candidate is not null && string.Equals(candidate, stable, StringComparison.Ordinal))
        {
            throw new ArgumentException($"The candidate '{candidate}' is the stable version; expected two different versions.", nameof(candidate));
        }

        Stable = stable;
        Candidate = candidateBuckets > 0 ? candidate : null;
        CandidateBuckets = candidateBuckets;
        Salt = salt;
        Shadow = shadowBuckets > 0 ? shadow : null;
        ShadowBuckets = shadowBuckets;
        MirrorCandidateToStable = mirrorCandidateToStable && CandidateBuckets > 0;
        Revision = revision;
        CandidateMirror = MirrorCandidateToStable ? Stable : null;
        ShadowStart = BucketCount - ShadowBuckets;
        IsSingle = CandidateBuckets == 0 && ShadowBuckets == 0;
    }

    /// <summary>Gets the version serving every key not assigned to the candidate.</summary>
    public string Stable { get; }

    /// <summary>Gets the candidate version, or <see langword="null"/> when it serves no bucket.</summary>
    public string? Candidate { get; }

    /// <summary>Gets how many of the <see cref="BucketCount"/> buckets the candidate serves.</summary>
    internal int CandidateBuckets { get; }

    /// <summary>Gets the candidate's share of keys in percent (0 … 100).</summary>
    public double CandidatePercent => CandidateBuckets * 100.0 / BucketCount;

    /// <summary>Gets the salt mixed into every key's hash.</summary>
    internal ulong Salt { get; }

    /// <summary>Gets the shadow version, or <see langword="null"/>.</summary>
    public string? Shadow { get; }

    /// <summary>Gets how many buckets of the stable version's traffic are mirrored to <see cref="Shadow"/>.</summary>
    internal int ShadowBuckets { get; }

    /// <summary>Gets whether windows served by the candidate are also run on the stable version for a paired comparison.</summary>
    internal bool MirrorCandidateToStable { get; }

    /// <summary>Gets the plan's revision.</summary>
    public long Revision { get; }

    /// <summary>Gets the routing decision's shadow for keys on the candidate: <see cref="Stable"/> when mirrored, else <see langword="null"/> (precomputed for the router).</summary>
    internal string? CandidateMirror { get; }

    /// <summary>Gets the first bucket mirrored to <see cref="Shadow"/> (the shadow takes the top <see cref="ShadowBuckets"/> buckets).</summary>
    internal int ShadowStart { get; }

    /// <summary>Gets whether one version serves every key with no shadow, so no key needs hashing.</summary>
    internal bool IsSingle { get; }

    /// <summary>Creates a plan in which <paramref name="version"/> serves everything.</summary>
    /// <param name="version">The only serving version.</param>
    /// <param name="revision">The plan's revision.</param>
    /// <returns>The plan.</returns>
    internal static TrafficPlan Single(string version, long revision = 0) => new(version, revision: revision);

    /// <summary>Derives a stable salt from a rollout id, so every rollout shuffles devices differently but consistently.</summary>
    /// <param name="rolloutId">The rollout's id.</param>
    /// <returns>The salt.</returns>
    internal static ulong SaltFor(string rolloutId)
    {
        ArgumentException.ThrowIfNullOrEmpty(rolloutId);
        return StableHash.Hash64(rolloutId, 0x4841522D524F4C4CUL);
    }

    /// <summary>Returns the share of keys (in percent) that <paramref name="version"/> serves under this plan.</summary>
    /// <param name="version">A version name.</param>
    /// <returns>0 … 100.</returns>
    internal double PercentOf(string version)
    {
        ArgumentNullException.ThrowIfNull(version);
        if (string.Equals(version, Candidate, StringComparison.Ordinal))
        {
            return CandidatePercent;
        }

        return string.Equals(version, Stable, StringComparison.Ordinal) ? (BucketCount - CandidateBuckets) * 100.0 / BucketCount : 0;
    }

    /// <inheritdoc />
    public override string ToString() =>
        Candidate is null
            ? $"{Stable} 100%{(Shadow is null ? string.Empty : $", shadow {Shadow}")}"
            : $"{Stable} {100 - CandidatePercent:0.##}% / {Candidate} {CandidatePercent:0.##}%{(Shadow is null ? string.Empty : $", shadow {Shadow}")}";
}
