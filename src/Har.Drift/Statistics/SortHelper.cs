using System.Buffers;
using System.Runtime.InteropServices;

namespace Har.Drift;

/// <summary>
/// Sorting of double samples: an LSD radix sort on the IEEE-754 bit patterns (11-bit digits, 6 passes,
/// skipping passes whose digit is constant) for large arrays, introsort for small ones. NaN sorts first.
/// </summary>
internal static class SortHelper
{
    private const int RadixThreshold = 2048;
    private const int Bits = 11;
    private const int Buckets = 1 << Bits;
    private const int Passes = 6;

    public static void Sort(Span<double> values)
    {
        if (values.Length < RadixThreshold)
        {
            values.Sort();
            return;
        }

        RadixSort(values);
    }

    private static ulong Key(double v)
    {
        var bits = BitConverter.DoubleToUInt64Bits(v);
        // Flip all bits of negatives, only the sign bit of positives: unsigned order = numeric order.
        // -0.0 and +0.0 become adjacent keys (-0 first); both compare equal as doubles, as in any sort.
        return (bits & 0x8000_0000_0000_0000UL) != 0 ? ~bits : bits | 0x8000_0000_0000_0000UL;
    }

    private static double FromKey(ulong key)
    {
        var bits = (key & 0x8000_0000_0000_0000UL) != 0 ? key & 0x7FFF_FFFF_FFFF_FFFFUL : ~key;
        return BitConverter.UInt64BitsToDouble(bits);
    }

    private static void RadixSort(Span<double> values)
    {
        var n = values.Length;
        var bufferA = ArrayPool<ulong>.Shared.Rent(n);
        var bufferB = ArrayPool<ulong>.Shared.Rent(n);
        var counts = ArrayPool<int>.Shared.Rent(Buckets * Passes);
        try
        {
            var src = bufferA.AsSpan(0, n);
            var dst = bufferB.AsSpan(0, n);
            var hist = counts.AsSpan(0, Buckets * Passes);
            hist.Clear();
            var keys = MemoryMarshal.Cast<double, ulong>(values);
            for (var i = 0; i < n; i++)
            {
                var k = Key(values[i]);
                src[i] = k;
                hist[(int)(k & (Buckets - 1))]++;
                hist[Buckets + (int)((k >> 11) & (Buckets - 1))]++;
                hist[(2 * Buckets) + (int)((k >> 22) & (Buckets - 1))]++;
                hist[(3 * Buckets) + (int)((k >> 33) & (Buckets - 1))]++;
                hist[(4 * Buckets) + (int)((k >> 44) & (Buckets - 1))]++;
                hist[(5 * Buckets) + (int)(k >> 55)]++;
            }

            for (var pass = 0; pass < Passes; pass++)
            {
                var h = hist.Slice(pass * Buckets, Buckets);
                var shift = pass * Bits;

                // A pass whose digit is the same for every key does not move anything.
                var firstDigit = (int)((src[0] >> shift) & (Buckets - 1));
                if (h[firstDigit] == n)
                {
                    continue;
                }

                var sum = 0;
                for (var b = 0; b < Buckets; b++)
                {
                    var c = h[b];
                    h[b] = sum;
                    sum += c;
                }

                for (var i = 0; i < n; i++)
                {
                    var k = src[i];
                    dst[h[(int)((k >> shift) & (Buckets - 1))]++] = k;
                }

                var t = src;
                src = dst;
                dst = t;
            }

            for (var i = 0; i < n; i++)
            {
                keys[i] = BitConverter.DoubleToUInt64Bits(FromKey(src[i]));
            }
        }
        finally
        {
            ArrayPool<ulong>.Shared.Return(bufferA);
            ArrayPool<ulong>.Shared.Return(bufferB);
            ArrayPool<int>.Shared.Return(counts);
        }
    }

    /// <summary>
    /// The median of <paramref name="values"/>, exactly as sorting them (NaN first) and taking the middle element, or
    /// the mean of the two middle ones, would give it; an empty span gives NaN. Linear time on average
    /// (quickselect with a median-of-three pivot, falling back to sorting the remaining range when the partitions
    /// stay unbalanced). Reorders <paramref name="values"/>.
    /// </summary>
    public static double Median(Span<double> values)
    {
        var n = values.Length;
        if (n == 0)
        {
            return double.NaN;
        }

        // NaN sorts first, so m NaNs occupy sorted positions 0 … m − 1.
        var m = 0;
        for (var i = 0; i < n; i++)
        {
            if (double.IsNaN(values[i]))
            {
                (values[i], values[m]) = (values[m], values[i]);
                m++;
            }
        }

        var upper = n / 2;
        var lower = n % 2 == 1 ? upper : upper - 1;
        if (lower < m)
        {
            return double.NaN;
        }

        var rest = values[m..];
        var k = upper - m;
        Select(rest, k);
        if (lower == upper)
        {
            return rest[k];
        }

        // After selection every element left of k is ≤ rest[k]: the lower middle is their maximum.
        var below = rest[0];
        for (var i = 1; i < k; i++)
        {
            below = Math.Max(below, rest[i]);
        }

        return 0.5 * (below + rest[k]);
    }

    /// <summary>Reorders NaN-free <paramref name="a"/> so that a[k] is its k-th smallest, with a[..k] ≤ a[k] ≤ a[(k + 1)..].</summary>
    private static void Select(Span<double> a, int k)
    {
        var lo = 0;
        var hi = a.Length - 1;
        var budget = (2 * System.Numerics.BitOperations.Log2((uint)a.Length)) + 4;
        while (hi > lo)
        {
            if (hi - lo < 16 || budget-- == 0)
            {
                a[lo..(hi + 1)].Sort();
                return;
            }

            var mid = lo + ((hi - lo) / 2);
            if (a[mid] < a[lo])
            {
                (a[mid], a[lo]) = (a[lo], a[mid]);
            }

            if (a[hi] < a[lo])
            {
                (a[hi], a[lo]) = (a[lo], a[hi]);
            }

            if (a[hi] < a[mid])
            {
                (a[hi], a[mid]) = (a[mid], a[hi]);
            }

            var pivot = a[mid];
            var i = lo;
            var j = hi;
            while (i <= j)
            {
                while (a[i] < pivot)
                {
                    i++;
                }

                while (a[j] > pivot)
                {
                    j--;
                }

                if (i <= j)
                {
                    (a[i], a[j]) = (a[j], a[i]);
                    i++;
                    j--;
                }
            }

            // [lo, j] ≤ pivot, [i, hi] ≥ pivot, and everything strictly between equals the pivot.
            if (k <= j)
            {
                hi = j;
            }
            else if (k >= i)
            {
                lo = i;
            }
            else
            {
                return;
            }
        }
    }
}
