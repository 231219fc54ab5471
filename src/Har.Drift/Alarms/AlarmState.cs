namespace Har.Drift;

/// <summary>
/// A device's sequential change detector: one CUSUM per check, S ← max(0, S + x − k), where x is the check's evidence
/// in the latest scoring (0 when it passed; when it failed, 1 plus how far past its bound it lay relative to the bound,
/// at most 1 + <see cref="Diagnosis.MaxExcess"/>; <see cref="Decisive"/> for checks that are certain on one window:
/// non-finite, stuck, saturated, unit errors). The device alarms while any S reaches its check's threshold h, which
/// is calibrated on that evidence (<see cref="AlarmCalibration"/>).
/// </summary>
internal sealed class AlarmState
{
    /// <summary>The allowance k subtracted per scoring.</summary>
    public const double Allowance = 0.5;

    /// <summary>The smallest threshold (two consecutive failures just past their bound, or one failure by half its bound).</summary>
    public const double MinThreshold = 1.5;

    /// <summary>Step added above the largest training statistic to be allowed.</summary>
    public const double Increment = 0.25;

    /// <summary>Evidence of a decisive check.</summary>
    public const double Decisive = 100;

    private readonly Dictionary<string, double> _sums = new(StringComparer.Ordinal);

    /// <summary>Gets the largest statistic over the checks.</summary>
    public double Statistic { get; private set; }

    /// <summary>Gets the check with the largest statistic, or null.</summary>
    public string? Leading { get; private set; }

    /// <summary>Gets the scorings taken in.</summary>
    public int Scorings { get; private set; }

    /// <summary>Clears the statistics.</summary>
    public void Reset()
    {
        _sums.Clear();
        Statistic = 0;
        Leading = null;
        Scorings = 0;
    }

    /// <summary>Gets the current statistic of every check that has one.</summary>
    public IReadOnlyDictionary<string, double> Sums => _sums;

    /// <summary>
    /// Takes in one scoring's evidence per failed check (checks not listed passed or had no evidence) and returns the
    /// check whose statistic lies furthest above its threshold (or closest to it), with the statistic and threshold.
    /// </summary>
    public (string? Check, double Statistic, double Threshold) Update(IReadOnlyList<Evidence> evidence, Func<string, double> threshold)
    {
        Scorings++;
        foreach (var key in _sums.Keys.ToList())
        {
            _sums[key] = Math.Max(0, _sums[key] - Allowance);
        }

        foreach (var e in evidence)
        {
            _sums.TryGetValue(e.Check, out var s);
            _sums[e.Check] = s + e.Weight;
        }

        string? best = null;
        double bestStatistic = 0, bestThreshold = MinThreshold, bestRatio = -1;
        foreach (var (key, s) in _sums)
        {
            var h = threshold(key);
            if (s > 0 && s / h > bestRatio)
            {
                bestRatio = s / h;
                best = key;
                bestStatistic = s;
                bestThreshold = h;
            }
        }

        Statistic = bestStatistic;
        Leading = best;
        return (best, bestStatistic, bestThreshold);
    }

    /// <summary>One failed check of one scoring.</summary>
    /// <param name="Check">The check (one CUSUM each).</param>
    /// <param name="Weight">The evidence x.</param>
    internal readonly record struct Evidence(string Check, double Weight);
}
