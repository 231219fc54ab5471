using System.Numerics;

namespace Har.Deployment;

/// <summary>
/// A fixed-memory log-linear latency histogram (HDR-style): 16 sub-buckets per power of two of
/// microseconds, so any quantile is reported within 6.25 % of the true value, from 1 µs to about
/// 71 minutes, with 640 counters and no allocation per sample. Quantiles report the bucket's upper
/// edge (never optimistic).
/// </summary>
internal sealed class LatencyHistogram
{
    private const int SubBucketBits = 4;
    private const int SubBuckets = 1 << SubBucketBits;
    private const int Exponents = 40;
    private readonly long[] _counts = new long[Exponents * SubBuckets];

    public long Count { get; private set; }

    public void Record(TimeSpan latency)
    {
        var micros = Math.Max(1, latency.Ticks / 10);
        _counts[Index((ulong)micros)]++;
        Count++;
    }

    public void Add(LatencyHistogram other)
    {
        for (var i = 0; i < _counts.Length; i++)
        {
            _counts[i] += other._counts[i];
        }

        Count += other.Count;
    }

    /// <summary>The non-empty buckets as (index, count) pairs (what a fleet replica ships to the leader).</summary>
    internal Dictionary<int, long> NonEmpty()
    {
        var buckets = new Dictionary<int, long>();
        for (var i = 0; i < _counts.Length; i++)
        {
            if (_counts[i] != 0)
            {
                buckets[i] = _counts[i];
            }
        }

        return buckets;
    }

    /// <summary>Adds buckets shipped by <see cref="NonEmpty"/>; an index outside the histogram is refused.</summary>
    internal void Add(IReadOnlyDictionary<int, long> buckets)
    {
        foreach (var (index, count) in buckets)
        {
            if ((uint)index >= (uint)_counts.Length || count < 0)
            {
                throw new InvalidDataException($"Latency bucket {index} with count {count} is outside the histogram's {_counts.Length} buckets or negative.");
            }

            _counts[index] += count;
            Count += count;
        }
    }

    public void Reset()
    {
        Array.Clear(_counts);
        Count = 0;
    }

    /// <summary>The latency at quantile <paramref name="q"/> (0 &lt; q ≤ 1), or <see cref="TimeSpan.Zero"/> when empty.</summary>
    public TimeSpan Quantile(double q)
    {
        if (Count == 0)
        {
            return TimeSpan.Zero;
        }

        var rank = (long)Math.Ceiling(q * Count);
        rank = Math.Clamp(rank, 1, Count);
        long seen = 0;
        for (var i = 0; i < _counts.Length; i++)
        {
            seen += _counts[i];
            if (seen >= rank)
            {
                return TimeSpan.FromTicks((long)Math.Min(UpperEdgeMicros(i), long.MaxValue / 10) * 10);
            }
        }

        return TimeSpan.FromTicks((long)Math.Min(UpperEdgeMicros(_counts.Length - 1), long.MaxValue / 10) * 10);
    }

    internal static int Index(ulong micros)
    {
        if (micros < SubBuckets)
        {
            return (int)micros;
        }

        var exponent = 63 - BitOperations.LeadingZeroCount(micros); // ≥ SubBucketBits
        var shift = exponent - SubBucketBits;
        var sub = (int)((micros >> shift) & (SubBuckets - 1));
        var index = ((shift + 1) * SubBuckets) + sub;
        return Math.Min(index, (Exponents * SubBuckets) - 1);
    }

    internal static ulong UpperEdgeMicros(int index)
    {
        if (index < SubBuckets)
        {
            return (ulong)index;
        }

        var shift = (index / SubBuckets) - 1;
        var sub = (ulong)(index % SubBuckets);
        return ((SubBuckets + sub + 1UL) << shift) - 1;
    }

    /// <summary>A copy of the counts (what an analysis snapshot keeps for its confidence bounds).</summary>
    public LatencyHistogram Clone()
    {
        var copy = new LatencyHistogram();
        Array.Copy(_counts, copy._counts, _counts.Length);
        copy.Count = Count;
        return copy;
    }

    /// <summary>
    /// A distribution-free lower confidence bound for the <paramref name="q"/> quantile at level 1 − <paramref name="alpha"/>
    /// (an order statistic chosen by the binomial distribution, <see cref="Statistics.QuantileLowerRank"/>), taken at the
    /// lower edge of its bucket so the bucketing never makes it larger; <see cref="TimeSpan.Zero"/> when there are too few samples.
    /// </summary>
    public TimeSpan LowerBound(double q, double alpha)
    {
        var rank = Statistics.QuantileLowerRank(Count, q, alpha);
        if (rank < 1)
        {
            return TimeSpan.Zero;
        }

        var index = BucketOfRank(rank);
        return TimeSpan.FromTicks((long)(index == 0 ? 0 : Math.Min(UpperEdgeMicros(index - 1) + 1, long.MaxValue / 10)) * 10);
    }

    /// <summary>
    /// A distribution-free upper confidence bound for the <paramref name="q"/> quantile at level 1 − <paramref name="alpha"/>,
    /// taken at the upper edge of its bucket; <see cref="TimeSpan.MaxValue"/> when there are too few samples.
    /// </summary>
    public TimeSpan UpperBound(double q, double alpha)
    {
        var rank = Statistics.QuantileUpperRank(Count, q, alpha);
        if (rank > Count)
        {
            return TimeSpan.MaxValue;
        }

        // Recorded values are whole microseconds rounded down: the bucket's upper edge plus one microsecond bounds the true value.
        return TimeSpan.FromTicks((long)Math.Min(UpperEdgeMicros(BucketOfRank(rank)) + 1, long.MaxValue / 10) * 10);
    }

    private int BucketOfRank(long rank)
    {
        long seen = 0;
        for (var i = 0; i < _counts.Length; i++)
        {
            seen += _counts[i];
            if (seen >= rank)
            {
                return i;
            }
        }

        return _counts.Length - 1;
    }
}
