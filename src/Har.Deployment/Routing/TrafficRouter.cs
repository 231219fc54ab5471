using System.Runtime.CompilerServices;

namespace Har.Deployment;

/// <summary>
/// Routes stream (device) keys to model versions under the current <see cref="TrafficPlan"/>. Reads are
/// lock-free (one volatile read of the plan reference); plans are replaced atomically, so concurrent
/// readers see the old plan or the new one, never a half-applied one. A decision costs one XXH3 hash
/// of the key's UTF-16 code units with the plan's salt as seed, and allocates nothing.
/// </summary>
internal sealed class TrafficRouter
{
    private TrafficPlan _plan;

    /// <summary>Initializes a new instance of the <see cref="TrafficRouter"/> class.</summary>
    /// <param name="initial">The plan to start with.</param>
    public TrafficRouter(TrafficPlan initial)
    {
        ArgumentNullException.ThrowIfNull(initial);
        _plan = initial;
    }

    /// <summary>Gets the plan in force.</summary>
    public TrafficPlan Plan => Volatile.Read(ref _plan);

    /// <summary>Decides which version serves the stream <paramref name="key"/> (and which shadows it).</summary>
    /// <param name="key">The stream or device id.</param>
    /// <returns>The decision.</returns>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public RouteDecision Route(ReadOnlySpan<char> key) => Route(Volatile.Read(ref _plan), key);

    /// <summary>Replaces the plan atomically.</summary>
    /// <param name="plan">The new plan.</param>
    /// <returns>The plan it replaced.</returns>
    public TrafficPlan Apply(TrafficPlan plan)
    {
        ArgumentNullException.ThrowIfNull(plan);
        return Interlocked.Exchange(ref _plan, plan);
    }

    /// <summary>Replaces the plan only if <paramref name="expected"/> is still in force (compare-and-swap).</summary>
    /// <param name="expected">The plan the caller based its change on.</param>
    /// <param name="plan">The new plan.</param>
    /// <returns><see langword="true"/> if the plan was replaced.</returns>
    public bool TryApply(TrafficPlan expected, TrafficPlan plan)
    {
        ArgumentNullException.ThrowIfNull(expected);
        ArgumentNullException.ThrowIfNull(plan);
        return ReferenceEquals(Interlocked.CompareExchange(ref _plan, plan, expected), expected);
    }

    /// <summary>Decides under a given plan (used by tests and by callers holding a plan snapshot).</summary>
    /// <param name="plan">The plan.</param>
    /// <param name="key">The stream or device id.</param>
    /// <returns>The decision.</returns>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static RouteDecision Route(TrafficPlan plan, ReadOnlySpan<char> key)
    {
        ArgumentNullException.ThrowIfNull(plan);
        if (plan.IsSingle)
        {
            return new RouteDecision(plan.Stable, null, false, -1);
        }

        var bucket = StableHash.Bucket(StableHash.Hash64(key, plan.Salt), TrafficPlan.BucketCount);
        if (bucket < plan.CandidateBuckets)
        {
            return new RouteDecision(plan.Candidate!, plan.CandidateMirror, true, bucket);
        }

        // The shadow mirrors the stable traffic from the top of the bucket range down, so it never
        // overlaps the candidate's buckets while both are below 100 %.
        return new RouteDecision(plan.Stable, bucket >= plan.ShadowStart ? plan.Shadow : null, false, bucket);
    }
}
