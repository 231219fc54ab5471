namespace Har.Drift;

/// <summary>
/// The finite-n distribution of the two-sided one-sample Kolmogorov statistic D_n and the one-sided
/// Smirnov statistic D_n+, computed the way SciPy's <c>kstwo</c> / <c>scipy.special.smirnov</c> do
/// (Simard and L'Ecuyer 2011: Ruben–Gambino closed forms at the ends, the Durbin matrix (Marsaglia–Tsang–Wang)
/// and Pomeranz recursions for small n, Pelz–Good for large n, and the Birnbaum–Tingey sum for the tail).
/// </summary>
internal static partial class KolmogorovDistribution
{
    private const double E128 = 3.402823669209385e38; // 2^128
    private const double Em128 = 2.938735877055719e-39; // 2^-128
    private const double Sqrt2Pi = 2.5066282746310002;
    private const double Log2Pi = 1.8378770664093453;
    private const double MinLog = -708.3964185322641;
    private const int SmirnovMaxComputeN = 1_000_000;

    private static readonly double[] StirlingCoefficients =
    [
        -2.955065359477124183e-2, 6.4102564102564102564e-3,
        -1.9175269175269175269e-3, 8.4175084175084175084e-4,
        -5.952380952380952381e-4, 7.9365079365079365079e-4,
        -2.7777777777777777778e-3, 8.3333333333333333333e-2,
    ];

    /// <summary>Pr(D_n &gt; x): SciPy's <c>kstwo.sf(x, n)</c> (NaN when n &lt; 1).</summary>
    public static double Sf(int n, double x)
    {
        if (n < 1 || double.IsNaN(x))
        {
            return double.NaN;
        }

        // rv_continuous.sf: support is (0.5/n, 1).
        if (x <= 0.5 / n)
        {
            return 1.0;
        }

        if (x >= 1.0)
        {
            return 0.0;
        }

        return Kolmogn(n, x, cdf: false);
    }

    /// <summary>Pr(D_n &lt;= x): SciPy's <c>kstwo.cdf(x, n)</c>.</summary>
    public static double Cdf(int n, double x)
    {
        if (n < 1 || double.IsNaN(x))
        {
            return double.NaN;
        }

        if (x <= 0.5 / n)
        {
            return 0.0;
        }

        if (x >= 1.0)
        {
            return 1.0;
        }

        return Kolmogn(n, x, cdf: true);
    }

    private static double Select(double cdfProb, double sfProb, bool cdf) => Math.Clamp(cdf ? cdfProb : sfProb, 0.0, 1.0);

    private static double LogNFactorialDivNPowN(int n)
    {
        var rn = 1.0 / n;
        var poly = 0.0;
        var z = rn / n;
        foreach (var c in StirlingCoefficients)
        {
            poly = (poly * z) + c;
        }

        return (Math.Log(n) / 2) - n + (Log2Pi / 2) + (rn * poly);
    }

    private static double Kolmogn(int n, double x, bool cdf)
    {
        if (x >= 1.0)
        {
            return Select(1.0, 0.0, cdf);
        }

        if (x <= 0.0)
        {
            return Select(0.0, 1.0, cdf);
        }

        var t = n * x;
        if (t <= 1.0)
        {
            if (t <= 0.5)
            {
                return Select(0.0, 1.0, cdf);
            }

            double prob;
            if (n <= 140)
            {
                prob = 1.0;
                for (var i = 1; i <= n; i++)
                {
                    prob *= i * (1.0 / n) * ((2 * t) - 1);
                }
            }
            else
            {
                prob = Math.Exp(LogNFactorialDivNPowN(n) + (n * Math.Log((2 * t) - 1)));
            }

            return Select(prob, 1.0 - prob, cdf);
        }

        if (t >= n - 1)
        {
            var prob = 2 * Math.Pow(1.0 - x, n);
            return Select(1 - prob, prob, cdf);
        }

        if (x >= 0.5)
        {
            var prob = 2 * SmirnovSf(n, x);
            return Select(1.0 - prob, prob, cdf);
        }

        var nxSquared = t * x;
        if (n <= 140)
        {
            if (nxSquared <= 0.754693)
            {
                var prob = DurbinMatrixCdf(n, x);
                return Select(prob, 1.0 - prob, cdf);
            }

            if (nxSquared <= 4)
            {
                var prob = PomeranzCdf(n, x);
                return Select(prob, 1.0 - prob, cdf);
            }

            var p2 = 2 * SmirnovSf(n, x);
            return Select(1.0 - p2, p2, cdf);
        }

        if (!cdf)
        {
            if (nxSquared >= 370.0)
            {
                return 0.0;
            }

            if (nxSquared >= 2.2)
            {
                return Math.Clamp(2 * SmirnovSf(n, x), 0.0, 1.0);
            }
        }

        double cdfProb;
        if (nxSquared >= 18.0)
        {
            cdfProb = 1.0;
        }
        else if (n <= 100_000 && n * Math.Pow(x, 1.5) <= 1.4)
        {
            cdfProb = DurbinMatrixCdf(n, x);
        }
        else
        {
            cdfProb = PelzGoodCdf(n, x);
        }

        return Select(cdfProb, 1.0 - cdfProb, cdf);
    }

    /// <summary>Pelz–Good (1976) asymptotic series for Pr(D_n &lt;= x).</summary>
    internal static double PelzGoodCdf(int n, double x)
    {
        if (x <= 0.0)
        {
            return 0.0;
        }

        if (x >= 1.0)
        {
            return 1.0;
        }

        var z = Math.Sqrt(n) * x;
        double zsq = z * z, zthree = zsq * z, zfour = zsq * zsq, zsix = zfour * zsq;
        var qlog = -Math.PI * Math.PI / 8 / zsq;
        if (qlog < -708)
        {
            return 0.0;
        }

        var q = Math.Exp(qlog);
        var pi2 = Math.PI * Math.PI;
        var pi4 = pi2 * pi2;
        var pi6 = pi4 * pi2;
        var k1a = -zsq;
        var k1b = pi2 / 4;
        var k2a = (6 * zsix) + (2 * zfour);
        var k2b = ((2 * zfour) - (5 * zsq)) * pi2 / 4;
        var k2c = pi4 * (1 - (2 * zsq)) / 16;
        var k3d = pi6 * (5 - (30 * zsq)) / 64;
        var k3c = pi4 * ((-60 * zsq) + (212 * zfour)) / 16;
        var k3b = pi2 * ((135 * zfour) - (96 * zsix)) / 4;
        var k3a = (-30 * zsix) - (90 * Math.Pow(z, 8));

        double s0 = 0, s1 = 0, s2 = 0, s3 = 0;
        var maxk = (int)Math.Ceiling(16 * z / Math.PI);
        for (var k = maxk; k > 0; k--)
        {
            double m = (2 * k) - 1;
            double msq = m * m, mfour = msq * msq, msix = mfour * msq;
            var qpower = Math.Pow(q, 8 * k);
            s0 = (s0 * qpower) + 1.0;
            s1 = (s1 * qpower) + (k1a + (k1b * msq));
            s2 = (s2 * qpower) + (k2a + (k2b * msq) + (k2c * mfour));
            s3 = (s3 * qpower) + (k3a + (k3b * msq) + (k3c * mfour) + (k3d * msix));
        }

        s0 = s0 * q * Sqrt2Pi / z;
        s1 = s1 * q * Sqrt2Pi / (6 * zfour);
        s2 = s2 * q * Sqrt2Pi / (72 * Math.Pow(z, 7));
        s3 = s3 * q * Sqrt2Pi / (6480 * Math.Pow(z, 10));

        var q2 = Math.Exp(-pi2 / 2 / zsq);
        var sqrt3z = Math.Sqrt(3) * z;
        double k2extra = 0, k3extra = 0;
        for (var k = maxk; k > 0; k--)
        {
            double ksq = (double)k * k;
            var qp = Math.Pow(q2, ksq);
            k2extra += ksq * qp;
            var kspi = Math.PI * k;
            k3extra += (sqrt3z + kspi) * (sqrt3z - kspi) * ksq * qp;
        }

        k2extra *= pi2 * Sqrt2Pi / (-36 * zthree);
        k3extra *= pi2 * Sqrt2Pi / (216 * zsix);
        s2 += k2extra;
        s3 += k3extra;
        var sqrtN = Math.Sqrt(n);
        s1 /= sqrtN;
        s2 /= n;
        s3 /= n * sqrtN;
        return s0 + s1 + s2 + s3;
    }

    /// <summary>
    /// Pr(D_n+ &gt;= x), the one-sided Smirnov survival function (SciPy's <c>scipy.special.smirnov(n, x)</c>),
    /// from the Birnbaum–Tingey sum; every term is positive, so it is summed in log space without cancellation.
    /// </summary>
    internal static double SmirnovSf(int n, double x)
    {
        if (!(n > 0 && x >= 0.0 && x <= 1.0))
        {
            return double.NaN;
        }

        if (n == 1)
        {
            return 1 - x;
        }

        if (x == 0.0)
        {
            return 1.0;
        }

        if (x == 1.0)
        {
            return 0.0;
        }

        var nx = n * x;
        var nxfl = (int)Math.Floor(nx);
        var alpha = nx - nxfl;
        if (nxfl == 0 || (nxfl == 1 && alpha == 0))
        {
            var cdf = x * Math.Pow(1 + x, n - 1);
            return Math.Clamp(1 - cdf, 0, 1);
        }

        if (-2 * n * x * x < MinLog)
        {
            return 0.0;
        }

        if (nxfl >= n - 1)
        {
            return Math.Pow(1 - x, n);
        }

        if (n > SmirnovMaxComputeN)
        {
            var logp = -Math.Pow((6.0 * n * x) + 1, 2) / 18.0 / n;
            return Math.Exp(logp);
        }

        // Lower sum: sf = x * sum_{j=0}^{floor(n(1-x))} C(n,j) (1 - x - j/n)^(n-j) (x + j/n)^(j-1),
        // excluding the last term when n(1-x) is an integer (it is zero).
        var last = n - nxfl - 1;

        var logC = 0.0;
        var sum = 0.0;
        var logScale = double.NaN;
        for (var j = 0; j <= last; j++)
        {
            if (j > 0)
            {
                logC += Math.Log((double)(n - j + 1) / j);
            }

            var b1 = ((double)(n - j) / n) - x; // 1 - x - j/n
            if (b1 <= 0)
            {
                break;
            }

            var b2 = x + ((double)j / n);
            var logTerm = logC + ((n - j) * Math.Log(b1)) + ((j - 1) * Math.Log(b2));
            if (double.IsNaN(logScale))
            {
                logScale = logTerm;
            }

            if (logTerm - logScale > 600)
            {
                sum *= Math.Exp(logScale - logTerm);
                logScale = logTerm;
            }

            var term = Math.Exp(logTerm - logScale);
            sum += term;
            // cephes' stopping rule: the remaining terms cannot change the sum in double precision.
            if (j != last && 4.0 * (last + 1 - j) * term < 2.220446049250313e-16 * sum)
            {
                break;
            }
        }

        var result = x * sum * Math.Exp(logScale);
        return Math.Clamp(result, 0.0, 1.0);
    }
}
