namespace Har.Drift;

/// <summary>
/// Exact null distribution of the two-sample Kolmogorov–Smirnov statistic by counting lattice paths, as SciPy's
/// <c>ks_2samp(method='exact')</c> does (Hodges 1958; Viehmann 2021 for the two-sided 1 − p recursion).
/// </summary>
internal static class KsExact
{
    /// <summary>
    /// Attempts the exact p-value. Returns <see langword="false"/> when the computation overflows double precision
    /// (SciPy then falls back to the asymptotic p-value), as SciPy's <c>_attempt_exact_2kssamp</c>.
    /// </summary>
    public static bool TryPValue(int n1, int n2, double d, KsAlternative alternative, out double roundedD, out double p)
    {
        var g = Gcd(n1, n2);
        var lcm = (long)(n1 / g) * n2;
        var h = (long)Math.Round(d * lcm, MidpointRounding.ToEven);
        roundedD = h * 1.0 / lcm;
        if (h == 0)
        {
            p = 1.0;
            return true;
        }

        p = double.NaN;
        if (alternative == KsAlternative.TwoSided)
        {
            p = n1 == n2 ? ProbOutsideSquare(n1, h) : OuterProbInside(n1, n2, g, h);
        }
        else if (n1 == n2)
        {
            p = 1.0;
            for (long j = 0; j < h; j++)
            {
                p *= (n1 - j) / (n1 + j + 1.0);
            }
        }
        else
        {
            var numPaths = CountPathsOutside(n1, n2, g, h);
            var bin = Binom(n1 + n2, n1);
            if (!double.IsFinite(numPaths) || numPaths > bin || double.IsInfinity(bin))
            {
                return false;
            }

            p = numPaths / bin;
        }

        return double.IsFinite(p) && p is >= 0 and <= 1;
    }

    internal static int Gcd(int a, int b)
    {
        while (b != 0)
        {
            (a, b) = (b, a % b);
        }

        return a;
    }

    /// <summary>Pr(D_{n,n} &gt;= h/n), SciPy's <c>_compute_prob_outside_square</c>.</summary>
    internal static double ProbOutsideSquare(long n, long h)
    {
        var p = 0.0;
        var k = (long)Math.Floor((double)n / h);
        while (k >= 0)
        {
            var p1 = 1.0;
            for (long j = 0; j < h; j++)
            {
                p1 = (n - (k * h) - j) * p1 / (n + (k * h) + j + 1);
            }

            p = p1 * (1.0 - p);
            k--;
        }

        return 2 * p;
    }

    /// <summary>Proportion of paths that leave the band |x/m − y/n| &lt; h/lcm (SciPy's <c>_compute_outer_prob_inside_method</c>).</summary>
    internal static double OuterProbInside(long m, long n, long g, long h)
    {
        if (m < n)
        {
            (m, n) = (n, m);
        }

        var mg = m / g;
        var ng = n / g;
        long minj = 0;
        var maxj = Math.Min((long)Math.Ceiling((double)h / mg), n + 1);
        var curlen = maxj - minj;
        var lenA = Math.Min((2 * maxj) + 2, n + 1);
        var a = new double[lenA];
        Array.Fill(a, 1.0);
        for (var q = minj; q < maxj; q++)
        {
            a[q] = 0.0;
        }

        for (long i = 1; i <= m; i++)
        {
            var lastminj = minj;
            var lastlen = curlen;
            minj = Math.Max((long)Math.Floor((double)((ng * i) - h) / mg) + 1, 0);
            minj = Math.Min(minj, n);
            maxj = Math.Min((long)Math.Ceiling((double)((ng * i) + h) / mg), n + 1);
            if (maxj <= minj)
            {
                return 1.0;
            }

            var val = minj == 0 ? 0.0 : 1.0;
            for (long jj = 0; jj < maxj - minj; jj++)
            {
                var j = jj + minj;
                val = ((a[jj + minj - lastminj] * i) + (val * j)) / (i + j);
                a[jj] = val;
            }

            curlen = maxj - minj;
            if (lastlen > curlen)
            {
                for (var q = maxj - minj; q < maxj - minj + (lastlen - curlen); q++)
                {
                    a[q] = 1;
                }
            }
        }

        return a[maxj - minj - 1];
    }

    /// <summary>Number of lattice paths that go below the diagonal m·y &lt;= n·x − h·g (SciPy's <c>_count_paths_outside_method</c>).</summary>
    internal static double CountPathsOutside(long m, long n, long g, long h)
    {
        if (m < n)
        {
            (m, n) = (n, m);
        }

        var mg = m / g;
        var ng = n / g;
        var lxj = n + FloorDiv(mg - h, mg);
        if (lxj <= 0)
        {
            return Binom(m + n, n);
        }

        var xj = new long[lxj];
        for (long j = 0; j < lxj; j++)
        {
            xj[j] = FloorDiv(h + (mg * j) + ng - 1, ng);
        }

        var b = new double[lxj];
        b[0] = 1;
        for (long j = 1; j < lxj; j++)
        {
            var bj = Binom(xj[j] + j, j);
            for (long i = 0; i < j; i++)
            {
                bj -= Binom(xj[j] - xj[i] + j - i, j - i) * b[i];
            }

            if (!double.IsFinite(bj))
            {
                return double.NaN;
            }

            b[j] = bj;
        }

        var numPaths = 0.0;
        for (long j = 0; j < lxj; j++)
        {
            numPaths += b[j] * Binom(m - xj[j] + (n - j), n - j);
        }

        return numPaths;
    }

    private static long FloorDiv(long a, long b) => (long)Math.Floor((double)a / b);

    /// <summary>Binomial coefficient in double precision (+∞ on overflow), computed like SciPy's <c>special.binom</c> for integers.</summary>
    internal static double Binom(long n, long k)
    {
        if (k < 0 || k > n)
        {
            return 0.0;
        }

        var kx = Math.Min(k, n - k);
        if (kx == 0)
        {
            return 1.0;
        }

        if (kx < 20)
        {
            // Product form (exact for small k).
            var num = 1.0;
            var den = 1.0;
            for (long i = 1; i <= kx; i++)
            {
                num *= i + n - kx;
                den *= i;
                if (Math.Abs(num) > 1e50)
                {
                    num /= den;
                    den = 1.0;
                }
            }

            return num / den;
        }

        // Large k: exp of log-gamma differences; overflow yields +inf as in SciPy.
        var logB = LogGamma(n + 1.0) - LogGamma(k + 1.0) - LogGamma(n - k + 1.0);
        return logB > 709.782712893384 ? double.PositiveInfinity : Math.Exp(logB);
    }

    /// <summary>ln Γ(x) for x &gt; 0 (Lanczos, g = 7, n = 9; relative error ≈ 1e-15).</summary>
    internal static double LogGamma(double x)
    {
        ReadOnlySpan<double> c =
        [
            0.99999999999980993, 676.5203681218851, -1259.1392167224028, 771.32342877765313,
            -176.61502916214059, 12.507343278686905, -0.13857109526572012, 9.9843695780195716e-6,
            1.5056327351493116e-7,
        ];
        if (x < 0.5)
        {
            return Math.Log(Math.PI / Math.Abs(Math.Sin(Math.PI * x))) - LogGamma(1 - x);
        }

        x -= 1;
        var a = c[0];
        var t = x + 7.5;
        for (var i = 1; i < 9; i++)
        {
            a += c[i] / (x + i);
        }

        return (0.5 * Math.Log(2 * Math.PI)) + ((x + 0.5) * Math.Log(t)) - t + Math.Log(a);
    }
}
