namespace Har.Drift;

/// <summary>The exact small-n methods of the Kolmogorov distribution: the Durbin matrix and the Pomeranz recursion.</summary>
internal static partial class KolmogorovDistribution
{
    /// <summary>Durbin (1968) matrix method as in Marsaglia, Tsang and Wang (2003): Pr(D_n &lt;= d).</summary>
    internal static double DurbinMatrixCdf(int n, double d)
    {
        if (d >= 1.0)
        {
            return 1.0;
        }

        var nd = n * d;
        if (nd <= 0.5)
        {
            return 0.0;
        }

        var k = (int)Math.Ceiling(nd);
        var h = k - nd;
        var m = (2 * k) - 1;

        var v = new double[m];
        var w = new double[m];
        var fac = 1.0;
        for (var j = 1; j <= m; j++)
        {
            v[j - 1] = 1.0 - Math.Pow(h, j);
            w[j - 1] = fac;
            fac /= j;
            v[j - 1] *= fac;
        }

        var tt = Math.Pow(Math.Max((2 * h) - 1.0, 0), m) - (2 * Math.Pow(h, m));
        v[m - 1] = (1.0 + tt) * fac;

        var hm = new double[m * m];
        for (var i = 1; i < m; i++)
        {
            // H[i-1:, i] = w[:m-i+1]
            for (var r = i - 1; r < m; r++)
            {
                hm[(r * m) + i] = w[r - (i - 1)];
            }
        }

        for (var r = 0; r < m; r++)
        {
            hm[r * m] = v[r];
        }

        for (var c = 0; c < m; c++)
        {
            hm[((m - 1) * m) + c] = v[m - 1 - c];
        }

        var pw = new double[m * m];
        for (var i = 0; i < m; i++)
        {
            pw[(i * m) + i] = 1.0;
        }

        var tmp = new double[m * m];
        var nn = n;
        var expnt = 0;
        var hExpnt = 0;
        while (nn > 0)
        {
            if ((nn & 1) != 0)
            {
                MatMul(pw, hm, tmp, m);
                (pw, tmp) = (tmp, pw);
                expnt += hExpnt;
            }

            MatMul(hm, hm, tmp, m);
            (hm, tmp) = (tmp, hm);
            hExpnt *= 2;
            if (Math.Abs(hm[((k - 1) * m) + k - 1]) > E128)
            {
                for (var i = 0; i < hm.Length; i++)
                {
                    hm[i] /= E128;
                }

                hExpnt += 128;
            }

            nn /= 2;
        }

        var p = pw[((k - 1) * m) + k - 1];
        for (var i = 1; i <= n; i++)
        {
            p = i * p / n;
            if (Math.Abs(p) < Em128)
            {
                p *= E128;
                expnt -= 128;
            }
        }

        if (expnt != 0)
        {
            p = Math.ScaleB(p, expnt);
        }

        return Math.Clamp(p, 0.0, 1.0);
    }

    private static void MatMul(double[] a, double[] b, double[] c, int m)
    {
        Array.Clear(c);
        for (var i = 0; i < m; i++)
        {
            var rowC = c.AsSpan(i * m, m);
            for (var k = 0; k < m; k++)
            {
                var aik = a[(i * m) + k];
                if (aik == 0)
                {
                    continue;
                }

                var rowB = b.AsSpan(k * m, m);
                for (var j = 0; j < m; j++)
                {
                    rowC[j] += aik * rowB[j];
                }
            }
        }
    }

    private static (int J1, int J2) PomeranzJ1J2(int i, int n, int ll, int ceilf, int roundf)
    {
        int j1, j2;
        if (i == 0)
        {
            j1 = -ll - ceilf - 1;
            j2 = ll + ceilf - 1;
        }
        else
        {
            var ip1div2 = (i + 1) / 2;
            var ip1mod2 = (i + 1) % 2;
            if (ip1mod2 == 0)
            {
                if (ip1div2 == n + 1)
                {
                    j1 = n - ll - ceilf - 1;
                    j2 = n + ll + ceilf - 1;
                }
                else
                {
                    j1 = ip1div2 - 1 - ll - roundf - 1;
                    j2 = ip1div2 + ll - 1 + ceilf - 1;
                }
            }
            else
            {
                j1 = ip1div2 - 1 - ll - 1;
                j2 = ip1div2 + ll + roundf - 1;
            }
        }

        return (Math.Max(j1 + 2, 0), Math.Min(j2, n));
    }

    /// <summary>Pomeranz (1974) recursion: Pr(D_n &lt;= x).</summary>
    internal static double PomeranzCdf(int n, double x)
    {
        var t = n * x;
        var ll = (int)Math.Floor(t);
        var f = t - ll;
        var g = Math.Min(f, 1.0 - f);
        var ceilf = f > 0 ? 1 : 0;
        var roundf = f > 0.5 ? 1 : 0;
        var npwrs = 2 * (ll + 1);
        var gpower = new double[npwrs];
        var twogpower = new double[npwrs];
        var onem2gpower = new double[npwrs];
        gpower[0] = twogpower[0] = onem2gpower[0] = 1.0;
        var expnt = 0;
        double gOverN = g / n, twoGOverN = 2 * g / n, oneMinusTwoGOverN = (1 - (2 * g)) / n;
        for (var m = 1; m < npwrs; m++)
        {
            gpower[m] = gpower[m - 1] * gOverN / m;
            twogpower[m] = twogpower[m - 1] * twoGOverN / m;
            onem2gpower[m] = onem2gpower[m - 1] * oneMinusTwoGOverN / m;
        }

        var v0 = new double[npwrs];
        var v1 = new double[npwrs];
        var conv = new double[2 * npwrs];
        v1[0] = 1;
        int v0s = 0, v1s = 0;
        var (j1, j2) = PomeranzJ1J2(0, n, ll, ceilf, roundf);
        for (var i = 1; i < (2 * n) + 2; i++)
        {
            var k1 = j1;
            (v0, v1) = (v1, v0);
            (v0s, v1s) = (v1s, v0s);
            Array.Clear(v1);
            (j1, j2) = PomeranzJ1J2(i, n, ll, ceilf, roundf);
            var pwrs = (i == 1 || i == (2 * n) + 1) ? gpower : (i % 2 != 0 ? twogpower : onem2gpower);
            var ln2 = j2 - k1 + 1;
            if (ln2 > 0)
            {
                // conv = np.convolve(V0[k1 - V0s : k1 - V0s + ln2], pwrs[:ln2]) (full convolution)
                var offset = k1 - v0s;
                var convLen = (2 * ln2) - 1;
                Array.Clear(conv, 0, convLen);
                for (var a = 0; a < ln2; a++)
                {
                    var va = v0[offset + a];
                    if (va == 0)
                    {
                        continue;
                    }

                    for (var b = 0; b < ln2; b++)
                    {
                        conv[a + b] += va * pwrs[b];
                    }
                }

                var convStart = j1 - k1;
                var useLen = j2 - j1 + 1;
                var max = 0.0;
                for (var q = 0; q < useLen; q++)
                {
                    v1[q] = conv[convStart + q];
                    max = Math.Max(max, v1[q]);
                }

                if (max > 0 && max < Em128)
                {
                    for (var q = 0; q < v1.Length; q++)
                    {
                        v1[q] *= E128;
                    }

                    expnt -= 128;
                }

                v1s = v0s + j1 - k1;
            }
        }

        var ans = v1[n - v1s];
        for (var m = 1; m <= n; m++)
        {
            if (Math.Abs(ans) > E128)
            {
                ans *= Em128;
                expnt += 128;
            }

            ans *= m;
        }

        if (expnt != 0)
        {
            ans = Math.ScaleB(ans, expnt);
        }

        return Math.Clamp(ans, 0.0, 1.0);
    }
}
