namespace Har.Deployment;

/// <summary>What one replica of a fleet observed since it last shipped its observations: summed into the leader's.</summary>
internal sealed class ObservationDelta
{
    public Dictionary<string, Version> Versions { get; set; } = new(StringComparer.Ordinal);

    public Paired? Pairs { get; set; }

    /// <summary>
    /// Gets or sets the windows labelled on the shipping replica since its last shipment: only replicas of releases before
    /// <c>har_fleet.labelled_windows</c> ship them here (read during a rolling upgrade); null from any other.
    /// </summary>
    public List<ShippedLabel>? Labels { get; set; }

    /// <summary>Gets whether nothing was observed.</summary>
    public bool IsEmpty() => (Labels is null || Labels.Count == 0) && (Pairs is null || Pairs.Pairs == 0) && Versions.Values.All(v => v.Requests == 0 && (v.MirrorRuns ?? 0) == 0 && v.Latency.Count == 0 && v.Service.Count == 0);

    internal sealed record Version(long Requests, long Errors, double ConfidenceSum, double ConfidenceSumSquares, long Uncertain, long[] Classes, Dictionary<int, long> Latency, Dictionary<int, long> Service)
    {
        /// <summary>Gets the service times of single-window runs (a subset of <see cref="Service"/>); <see langword="null"/> from a replica that did not ship them.</summary>
        public Dictionary<int, long>? Single { get; init; }

        /// <summary>Gets the sum over the <see cref="Service"/> samples of the size of the run each window was scored in; <see langword="null"/> from a replica that did not ship it.</summary>
        public long? BatchSizeSum { get; init; }

        /// <summary>Gets the version's mirrored runs (the stable version on windows the candidate served), failed ones included; <see langword="null"/> from a replica that did not ship them.</summary>
        public long? MirrorRuns { get; init; }

        /// <summary>Gets the failed ones among <see cref="MirrorRuns"/>; <see langword="null"/> from a replica that did not ship them.</summary>
        public long? MirrorErrors { get; init; }
    }

    internal sealed record Paired(long Pairs, long Agreements, long[] Candidate, long[] Stable, double DiffSum, double DiffSumSquares, long CandidateUncertain, long StableUncertain)
    {
        /// <summary>Gets the sum of the stable version's confidence over the pairs; <see langword="null"/> from a replica that did not ship it.</summary>
        public double? StableConfidenceSum { get; init; }

        /// <summary>Gets the pairs on which the stable version was not uncertain; <see langword="null"/> from a replica that did not ship them.</summary>
        public long? StableSurePairs { get; init; }

        /// <summary>Gets the agreements among <see cref="StableSurePairs"/>; <see langword="null"/> from a replica that did not ship them.</summary>
        public long? StableSureAgreements { get; init; }

        /// <summary>Gets the candidate's class counts on the <see cref="StableSurePairs"/>; <see langword="null"/> from a replica that did not ship them.</summary>
        public long[]? SureCandidate { get; init; }

        /// <summary>Gets the stable version's class counts on the <see cref="StableSurePairs"/>; <see langword="null"/> from a replica that did not ship them.</summary>
        public long[]? SureStable { get; init; }

        /// <summary>Gets the pairs on which both versions were uncertain; <see langword="null"/> from a replica that did not ship them.</summary>
        public long? BothUncertain { get; init; }
    }
}

/// <summary>The fleet side of the observations: a follower drains what it recorded; the leader merges every replica's.</summary>
internal sealed partial class RolloutObservations
{
    /// <summary>Takes everything recorded since the last drain (the accumulators start empty).</summary>
    public ObservationDelta Drain()
    {
        lock (_intervalLock)
        {
            var delta = new ObservationDelta { Pairs = _pairs.Drain() };
            foreach (var (version, acc) in _versions)
            {
                delta.Versions[version] = acc.Drain();
            }

            return delta;
        }
    }

    /// <summary>Copies everything recorded in the current interval, which keeps it (a drain merged straight back).</summary>
    public ObservationDelta Copy()
    {
        var delta = Drain();
        Merge(delta);
        return delta;
    }

    /// <summary>Adds another replica's observations to the current interval.</summary>
    public void Merge(ObservationDelta delta)
    {
        lock (_intervalLock)
        {
            foreach (var (version, d) in delta.Versions)
            {
                Get(version).Merge(d);
            }

            if (delta.Pairs is { } pairs)
            {
                _pairs.Merge(pairs);
            }
        }
    }
}
