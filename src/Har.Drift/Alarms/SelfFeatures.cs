namespace Har.Drift;

/// <summary>
/// Per-window features a device is compared with its own past and with the reference on: the noise floor
/// (high-frequency energy of the quietest moments), the spread of still blocks, the gait cadence, the sensors' scale
/// (for unit errors) and the gravity direction of every 2-second block (for a rotation of the device).
/// </summary>
/// <param name="NoiseFloor">Per channel (profile order), the 20th percentile over the window's 2-second blocks of the RMS of the third difference divided by √20 (white noise of σ reads σ); NaN below 5 blocks.</param>
/// <param name="StillSpread">Per accelerometer axis, the median standard deviation over the still blocks; NaN when the window has no still block.</param>
/// <param name="StillBlocks">Still 2-second blocks in the window.</param>
/// <param name="Cadence">Step frequency (Hz) of the longest stretch of gait (|a| autocorrelation peak between 0.3 and 0.8 s); NaN without 8 s of gait.</param>
/// <param name="AccelerometerScale">Median |a| over the window (in the stream's unit).</param>
/// <param name="GyroscopeScale">95th percentile of |ω| over the window (in the stream's unit): turns and gait; NaN without a gyroscope.</param>
/// <param name="Directions">Per 2-second block, the unit gravity direction (block mean of the accelerometer) and whether the block is dynamic.</param>
internal sealed record SelfFeatures(double[] NoiseFloor, double[] StillSpread, int StillBlocks, double Cadence, double AccelerometerScale, double GyroscopeScale, List<(long Start, double[] Direction, bool Dynamic)> Directions)
{
    /// <summary>Block length in seconds.</summary>
    public const double BlockSeconds = 2.0;

    /// <summary>A block is dynamic (gait) when the standard deviation of |a| exceeds this fraction of gravity.</summary>
    public const double DynamicDeviation = 0.1;

    /// <summary>Computes the features of a window (finite values per channel, equal lengths).</summary>
    public static SelfFeatures Compute(double[][] series, int[] acc, int[] gyro, double sampleRateHz, double gravity)
    {
        var channels = series.Length;
        var n = series.Min(s => s.Length);
        var len = Math.Max(4, (int)Math.Round(BlockSeconds * sampleRateHz));
        var blocks = n / len;
        var hf = new double[channels][];
        for (var c = 0; c < channels; c++)
        {
            hf[c] = new double[blocks];
        }

        var directions = new List<(long, double[], bool)>(blocks);
        var stillSpreads = new List<double>[] { [], [], [] };
        var stillCount = 0;
        var dynamic = new bool[blocks];
        var magnitude = new double[n];
        for (var i = 0; i < n; i++)
        {
            double s = 0;
            foreach (var a in acc)
            {
                s += series[a][i] * series[a][i];
            }

            magnitude[i] = Math.Sqrt(s);
        }

        var gyroNorms = new List<double>();
        for (var b = 0; b < blocks; b++)
        {
            var from = b * len;
            for (var c = 0; c < channels; c++)
            {
                var x = series[c];
                // Third difference: white noise of σ gives variance 20σ², body motion (a few Hz at 50 Hz) almost nothing.
                double sum = 0;
                for (var i = from + 3; i < from + len; i++)
                {
                    var d3 = x[i] - (3 * x[i - 1]) + (3 * x[i - 2]) - x[i - 3];
                    sum += d3 * d3;
                }

                hf[c][b] = Math.Sqrt(sum / (len - 3) / 20);
            }

            double mm = 0, mq = 0;
            for (var i = from; i < from + len; i++)
            {
                mm += magnitude[i];
                mq += magnitude[i] * magnitude[i];
            }

            mm /= len;
            var magStd = Math.Sqrt(Math.Max(0, (mq / len) - (mm * mm)));
            dynamic[b] = magStd > DynamicDeviation * gravity;
            if (acc.Length == 3)
            {
                var mean = new double[3];
                var std = new double[3];
                for (var k = 0; k < 3; k++)
                {
                    double s = 0, q = 0;
                    for (var i = from; i < from + len; i++)
                    {
                        s += series[acc[k]][i];
                        q += series[acc[k]][i] * series[acc[k]][i];
                    }

                    mean[k] = s / len;
                    std[k] = Math.Sqrt(Math.Max(0, (q / len) - (mean[k] * mean[k])));
                }

                var norm = Math.Sqrt((mean[0] * mean[0]) + (mean[1] * mean[1]) + (mean[2] * mean[2]));
                if (norm > 0)
                {
                    directions.Add((from, [mean[0] / norm, mean[1] / norm, mean[2] / norm], dynamic[b]));
                    if (Math.Max(std[0], Math.Max(std[1], std[2])) < ImuPhysics.StillDeviation * norm)
                    {
                        stillCount++;
                        for (var k = 0; k < 3; k++)
                        {
                            stillSpreads[k].Add(std[k]);
                        }
                    }
                }
            }

            if (gyro.Length == 3)
            {
                for (var i = from; i < from + len; i++)
                {
                    var gx = series[gyro[0]][i];
                    var gy = series[gyro[1]][i];
                    var gz = series[gyro[2]][i];
                    gyroNorms.Add(Math.Sqrt((gx * gx) + (gy * gy) + (gz * gz)));
                }
            }
        }

        var floor = new double[channels];
        for (var c = 0; c < channels; c++)
        {
            floor[c] = blocks >= 5 ? Percentile(hf[c], 0.2) : double.NaN;
        }

        var spread = new double[3];
        for (var k = 0; k < 3; k++)
        {
            spread[k] = stillSpreads[k].Count > 0 ? ImuPhysics.Median([.. stillSpreads[k]]) : double.NaN;
        }

        return new SelfFeatures(
            floor,
            spread,
            stillCount,
            StepFrequency(magnitude, dynamic, len, sampleRateHz),
            n > 0 ? ImuPhysics.Median((double[])magnitude.Clone()) : double.NaN,
            gyroNorms.Count > 0 ? Percentile([.. gyroNorms], 0.95) : double.NaN,
            directions);
    }

    /// <summary>Step frequency of the longest run of at least four dynamic blocks, from the |a| autocorrelation peak.</summary>
    private static double StepFrequency(double[] magnitude, bool[] dynamic, int len, double rate)
    {
        int bestStart = -1, bestLength = 0;
        for (var b = 0; b < dynamic.Length;)
        {
            if (!dynamic[b])
            {
                b++;
                continue;
            }

            var e = b;
            while (e < dynamic.Length && dynamic[e])
            {
                e++;
            }

            if (e - b > bestLength)
            {
                bestLength = e - b;
                bestStart = b;
            }

            b = e;
        }

        if (bestLength < 4)
        {
            return double.NaN;
        }

        var x = magnitude.AsSpan(bestStart * len, bestLength * len);
        double mean = 0;
        foreach (var v in x)
        {
            mean += v;
        }

        mean /= x.Length;
        double var0 = 0;
        foreach (var v in x)
        {
            var0 += (v - mean) * (v - mean);
        }

        if (var0 <= 0)
        {
            return double.NaN;
        }

        var lo = Math.Max(1, (int)Math.Floor(0.3 * rate));
        var hi = Math.Min(x.Length / 2, (int)Math.Ceiling(0.8 * rate));
        var r = new double[hi + 2];
        for (var lag = lo - 1; lag <= hi + 1 && lag < x.Length; lag++)
        {
            double s = 0;
            for (var i = 0; i + lag < x.Length; i++)
            {
                s += (x[i] - mean) * (x[i + lag] - mean);
            }

            r[lag] = s / var0;
        }

        var best = -1;
        for (var lag = lo; lag <= hi; lag++)
        {
            if (r[lag] >= r[lag - 1] && r[lag] >= r[lag + 1] && (best < 0 || r[lag] > r[best]))
            {
                best = lag;
            }
        }

        if (best < 0 || r[best] < 0.2)
        {
            return double.NaN;
        }

        // Parabolic refinement of the peak.
        var denom = r[best - 1] - (2 * r[best]) + r[best + 1];
        var shift = denom < 0 ? 0.5 * (r[best - 1] - r[best + 1]) / denom : 0;
        return rate / (best + Math.Clamp(shift, -0.5, 0.5));
    }

    /// <summary>Linear-interpolated percentile of an unsorted array (copied).</summary>
    public static double Percentile(double[] values, double p)
    {
        if (values.Length == 0)
        {
            return double.NaN;
        }

        var s = (double[])values.Clone();
        Array.Sort(s);
        return PopulationStabilityIndex.Quantile(s, p);
    }
}
