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
}
