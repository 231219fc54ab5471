namespace Har.Drift;

/// <summary>Adjusted p-values for a family of tests.</summary>
internal static class MultipleTesting
{
    public static double[] Adjust(IReadOnlyList<double> p, MultipleTestingCorrection correction)
    {
        var m = p.Count;
        var order = Enumerable.Range(0, m).OrderBy(i => double.IsNaN(p[i]) ? 1.0 : p[i]).ThenBy(i => i).ToArray();
        var adjusted = new double[m];
        if (correction == MultipleTestingCorrection.Holm)
        {
            var running = 0.0;
            for (var r = 0; r < m; r++)
            {
                var v = double.IsNaN(p[order[r]]) ? 1.0 : Math.Min(1.0, (m - r) * p[order[r]]);
                running = Math.Max(running, v);
                adjusted[order[r]] = running;
            }
        }
        else
        {
            var running = 1.0;
            for (var r = m - 1; r >= 0; r--)
            {
                var v = double.IsNaN(p[order[r]]) ? 1.0 : Math.Min(1.0, p[order[r]] * m / (r + 1));
                running = Math.Min(running, v);
                adjusted[order[r]] = running;
            }
        }

        return adjusted;
    }
}
