namespace Har.Drift;

/// <summary>The alternative hypothesis of a two-sample Kolmogorov–Smirnov test (SciPy's <c>alternative</c>).</summary>
[System.Text.Json.Serialization.JsonConverter(typeof(System.Text.Json.Serialization.JsonStringEnumConverter<KsAlternative>))]
internal enum KsAlternative
{
    /// <summary>The distributions differ: D = sup |F_x − F_y|.</summary>
    TwoSided,

    /// <summary>F_x lies below F_y somewhere (x tends to be larger): D− = max(F_y − F_x).</summary>
    Less,

    /// <summary>F_x lies above F_y somewhere (x tends to be smaller): D+ = max(F_x − F_y).</summary>
    Greater,
}

/// <summary>How the p-value of a two-sample Kolmogorov–Smirnov test is computed (SciPy's <c>method</c>).</summary>
[System.Text.Json.Serialization.JsonConverter(typeof(System.Text.Json.Serialization.JsonStringEnumConverter<KsMethod>))]
internal enum KsMethod
{
    /// <summary>Exact when max(n, m) ≤ 10 000, otherwise asymptotic.</summary>
    Auto,

    /// <summary>The exact null distribution (lattice-path counting); falls back to asymptotic on overflow.</summary>
    Exact,

    /// <summary>Two-sided: the finite-n Kolmogorov distribution at round(n·m/(n+m)); one-sided: Hodges' formula.</summary>
    Asymptotic,
}

/// <summary>The result of a two-sample Kolmogorov–Smirnov test.</summary>
internal sealed class KsResult
{
    internal KsResult(double statistic, double pValue, double location, int sign, KsMethod method, int n, int m)
    {
        Statistic = statistic;
        PValue = pValue;
        Location = location;
        Sign = sign;
        Method = method;
        N = n;
        M = m;
    }

    /// <summary>Gets the KS statistic (for exact p-values, rounded to a multiple of 1/lcm(n, m) as SciPy does).</summary>
    public double Statistic { get; }

    /// <summary>Gets the p-value (NaN when undefined, e.g. asymptotic two-sided with n = m = 1).</summary>
    public double PValue { get; }

    /// <summary>Gets the value at which the statistic is attained.</summary>
    internal double Location { get; }

    /// <summary>Gets +1 when F_x − F_y is positive at <see cref="Location"/>, −1 when negative.</summary>
    internal int Sign { get; }

    /// <summary>Gets the method actually used (<see cref="KsMethod.Exact"/> or <see cref="KsMethod.Asymptotic"/>).</summary>
    public KsMethod Method { get; }

    /// <summary>Gets the size of the first sample.</summary>
    internal int N { get; }

    /// <summary>Gets the size of the second sample.</summary>
    internal int M { get; }

    /// <summary>Returns e.g. <c>KS D 0.231, p 1.2e-05 (Exact, n 50, m 80)</c>.</summary>
    /// <returns>The summary.</returns>
    public override string ToString() => string.Create(System.Globalization.CultureInfo.InvariantCulture, $"KS D {Statistic:G6}, p {PValue:G4} ({Method}, n {N}, m {M})");
}

/// <summary>
/// Two-sample Kolmogorov–Smirnov test with SciPy's semantics (<c>scipy.stats.ks_2samp</c>, 1.10): ECDFs evaluated
/// at every pooled point with ties counted as ≤, exact p-values by lattice-path counting, asymptotic two-sided
/// p-values from the exact finite-n Kolmogorov distribution at round(n·m/(n+m)), and Hodges' one-sided formula.
/// </summary>
internal static class KolmogorovSmirnov
{
    /// <summary>Sample size at or below which <see cref="KsMethod.Auto"/> uses the exact distribution.</summary>
    internal const int MaxAutoExactN = 10_000;

    /// <summary>Runs the test on two unsorted samples (both are copied and sorted; the inputs are not modified).</summary>
    /// <param name="x">The first sample (non-empty, no NaN).</param>
    /// <param name="y">The second sample (non-empty, no NaN).</param>
    /// <param name="alternative">The alternative hypothesis.</param>
    /// <param name="method">How the p-value is computed.</param>
    /// <returns>The statistic and p-value.</returns>
    public static KsResult Test(ReadOnlySpan<double> x, ReadOnlySpan<double> y, KsAlternative alternative = KsAlternative.TwoSided, KsMethod method = KsMethod.Auto)
    {
        RequireNonEmpty(x.Length, nameof(x));
        RequireNonEmpty(y.Length, nameof(y));
        var xs = GC.AllocateUninitializedArray<double>(x.Length);
        var ys = GC.AllocateUninitializedArray<double>(y.Length);
        x.CopyTo(xs);
        y.CopyTo(ys);
        SortHelper.Sort(xs);
        SortHelper.Sort(ys);
        RequireNoNaN(xs, nameof(x));
        RequireNoNaN(ys, nameof(y));
        return TestSorted(xs, ys, alternative, method);
    }

    /// <summary>
    /// Runs the test against a reference that is already sorted ascending (the fast path for monitoring: the
    /// reference is sorted once and reused). <paramref name="current"/> is copied and sorted.
    /// </summary>
    /// <param name="sortedReference">The first sample, sorted ascending.</param>
    /// <param name="current">The second sample, in any order.</param>
    /// <param name="alternative">The alternative hypothesis (with the reference as the first sample).</param>
    /// <param name="method">How the p-value is computed.</param>
    /// <returns>The statistic and p-value.</returns>
    internal static KsResult TestAgainstSorted(ReadOnlySpan<double> sortedReference, ReadOnlySpan<double> current, KsAlternative alternative = KsAlternative.TwoSided, KsMethod method = KsMethod.Auto)
    {
        RequireNonEmpty(current.Length, nameof(current));
        var ys = GC.AllocateUninitializedArray<double>(current.Length);
        current.CopyTo(ys);
        SortHelper.Sort(ys);
        RequireNoNaN(ys, nameof(current));
        return TestSorted(sortedReference, ys, alternative, method);
    }

    /// <summary>Runs the test on two samples that are both sorted ascending (no allocation beyond the p-value computation).</summary>
    /// <param name="sortedX">The first sample, sorted ascending.</param>
    /// <param name="sortedY">The second sample, sorted ascending.</param>
    /// <param name="alternative">The alternative hypothesis.</param>
    /// <param name="method">How the p-value is computed.</param>
    /// <returns>The statistic and p-value.</returns>
    internal static KsResult TestSorted(ReadOnlySpan<double> sortedX, ReadOnlySpan<double> sortedY, KsAlternative alternative = KsAlternative.TwoSided, KsMethod method = KsMethod.Auto)
    {
        RequireNonEmpty(sortedX.Length, nameof(sortedX));
        RequireNonEmpty(sortedY.Length, nameof(sortedY));
        RequireNoNaN(sortedX, nameof(sortedX));
        RequireNoNaN(sortedY, nameof(sortedY));
        var s = Statistics(sortedX, sortedY);
        return PValue(s, sortedX.Length, sortedY.Length, alternative, method);
    }

    /// <summary>The two-sided statistic sup |F_x − F_y| of two sorted samples, without a p-value.</summary>
    /// <param name="sortedX">The first sample, sorted ascending.</param>
    /// <param name="sortedY">The second sample, sorted ascending.</param>
    /// <returns>The statistic in [0, 1].</returns>
    internal static double Statistic(ReadOnlySpan<double> sortedX, ReadOnlySpan<double> sortedY)
    {
        RequireNonEmpty(sortedX.Length, nameof(sortedX));
        RequireNonEmpty(sortedY.Length, nameof(sortedY));
        var s = Statistics(sortedX, sortedY);
        return Math.Max(s.MaxS, s.MinS);
    }

    internal readonly record struct Extremes(double MaxS, double MaxLoc, double MinS, double MinLoc);

    /// <summary>max and −min of F_x − F_y over the pooled points, with SciPy's arithmetic (i/n − j/m) and first-occurrence locations.</summary>
    internal static Extremes Statistics(ReadOnlySpan<double> x, ReadOnlySpan<double> y)
    {
        int n = x.Length, m = y.Length;
        double dn = n, dm = m;
        var maxS = double.NegativeInfinity;
        var minS = double.PositiveInfinity;
        double maxLoc = double.NaN, minLoc = double.NaN;
        bool maxInX = false, minInX = false;
        int i = 0, j = 0;
        while (i < n || j < m)
        {
            double v;
            if (j >= m || (i < n && x[i] <= y[j]))
            {
                v = x[i];
            }
            else
            {
                v = y[j];
            }

            var inX = false;
            while (i < n && x[i] <= v)
            {
                inX |= x[i] == v;
                i++;
            }

            while (j < m && y[j] <= v)
            {
                j++;
            }

            var diff = (i / dn) - (j / dm);

            // SciPy takes argmax over data_all = concat(sorted x, sorted y): among equal extremes the first
            // occurrence is the smallest value present in x, else the smallest value of y.
            if (diff > maxS || (diff == maxS && inX && !maxInX))
            {
                maxS = diff;
                maxLoc = v;
                maxInX = inX;
            }

            if (diff < minS || (diff == minS && inX && !minInX))
            {
                minS = diff;
                minLoc = v;
                minInX = inX;
            }
        }

        return new Extremes(maxS, maxLoc, Math.Clamp(-minS, 0, 1), minLoc);
    }

    internal static KsResult PValue(Extremes s, int n1, int n2, KsAlternative alternative, KsMethod method)
    {
        double d, loc;
        int sign;
        if (alternative == KsAlternative.Less || (alternative == KsAlternative.TwoSided && s.MinS > s.MaxS))
        {
            d = s.MinS;
            loc = s.MinLoc;
            sign = -1;
        }
        else
        {
            d = s.MaxS;
            loc = s.MaxLoc;
            sign = 1;
        }

        var mode = method;
        if (mode == KsMethod.Auto)
        {
            mode = Math.Max(n1, n2) <= MaxAutoExactN ? KsMethod.Exact : KsMethod.Asymptotic;
        }
        else if (mode == KsMethod.Exact)
        {
            var g = KsExact.Gcd(n1, n2);
            if (n1 / g >= int.MaxValue / (double)(n2 / g))
            {
                mode = KsMethod.Asymptotic;
            }
        }

        var prob = double.NegativeInfinity;
        if (mode == KsMethod.Exact)
        {
            if (KsExact.TryPValue(n1, n2, d, alternative, out var rounded, out var p))
            {
                d = rounded;
                prob = p;
            }
            else
            {
                d = rounded;
                mode = KsMethod.Asymptotic;
            }
        }

        if (mode == KsMethod.Asymptotic)
        {
            var mm = (double)Math.Max(n1, n2);
            var nn = (double)Math.Min(n1, n2);
            var en = mm * nn / (mm + nn);
            if (alternative == KsAlternative.TwoSided)
            {
                var rounded = Math.Round(en, MidpointRounding.ToEven);
                prob = rounded < 1 ? double.NaN : KolmogorovDistribution.Sf((int)Math.Min(rounded, int.MaxValue), d);
            }
            else
            {
                var z = Math.Sqrt(en) * d;
                var expt = (-2 * z * z) - (2 * z * (mm + (2 * nn)) / Math.Sqrt(mm * nn * (mm + nn)) / 3.0);
                prob = Math.Exp(expt);
            }
        }

        prob = double.IsNaN(prob) ? prob : Math.Clamp(prob, 0, 1);
        return new KsResult(d, prob, loc, sign, mode, n1, n2);
    }

    private static void RequireNoNaN(ReadOnlySpan<double> sorted, string name)
    {
        if (double.IsNaN(sorted[0]) || double.IsNaN(sorted[^1]))
        {
            throw new ArgumentException("The sample contains NaN; remove non-finite values before testing (the drift monitor reports them as a sensor finding).", name);
        }
    }

    private static void RequireNonEmpty(int length, string name)
    {
        if (length == 0)
        {
            throw new ArgumentException("The sample is empty; the Kolmogorov–Smirnov test needs at least one value in each sample.", name);
        }
    }
}
