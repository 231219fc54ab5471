using System.Collections.Concurrent;

namespace Har.Deployment;

/// <summary>
/// Compares two versions' predictions by activity name, not by class index: each version's card lists its labels in
/// its network's output order, and two versions need not share it (a retrain that sorted its labels; a card whose
/// labels were written in another order than the network's outputs). The rollout analysis counts every prediction in
/// the stable version's class order, the order its class names come from.
/// </summary>
/// <remarks>
/// Without this, agreement and class mix compared class indexes: a candidate whose card names its outputs in another
/// order than the champion's was judged as if its <c>SITTING</c> were the champion's <c>STANDING</c>. Found from
/// outside: a candidate whose card swapped SITTING/STANDING and WALKING_UPSTAIRS/WALKING_DOWNSTAIRS (so the service
/// told every sitting user "STANDING") agreed with the champion on 99 % of windows and was promoted; a correctly
/// relabelled model would have been rolled back. A name one version has and the other lacks maps to an index past the
/// other's labels, where it agrees with nothing.
/// </remarks>
internal sealed class ClassOrder(Func<string, IReadOnlyList<string>?> labelsOf)
{
    private readonly ConcurrentDictionary<(string From, string To), int[]?> _maps = new();

    /// <summary>
    /// The map from <paramref name="from"/>'s class indexes to <paramref name="to"/>'s, or <see langword="null"/> when
    /// they are the same (same labels in the same order, or a version whose card is not resident).
    /// </summary>
    public int[]? Map(string from, string to)
    {
        if (ReferenceEquals(from, to) || from == to)
        {
            return null;
        }

        if (_maps.TryGetValue((from, to), out var map))
        {
            return map;
        }

        if (labelsOf(from) is not { } source || labelsOf(to) is not { } target)
        {
            return null; // not resident: nothing to map by (not cached, so a later call maps once it is)
        }

        return _maps.GetOrAdd((from, to), Build(source, target));
    }

    /// <summary><paramref name="index"/> in the target order of <paramref name="map"/> (<see langword="null"/>: unchanged).</summary>
    public static int Translate(int[]? map, int index) => map is null || (uint)index >= (uint)map.Length ? index : map[index];

    /// <summary>Whether class <paramref name="a"/> of labels <paramref name="labelsA"/> names the same activity as class <paramref name="b"/> of <paramref name="labelsB"/>.</summary>
    public static bool Same(IReadOnlyList<string> labelsA, int a, IReadOnlyList<string> labelsB, int b) =>
        (uint)a < (uint)labelsA.Count && (uint)b < (uint)labelsB.Count && string.Equals(labelsA[a], labelsB[b], StringComparison.OrdinalIgnoreCase);

    /// <summary>
    /// How two versions' class sets differ, by name (case-insensitive; the order does not matter, <see cref="Build"/>
    /// maps it), or <see langword="null"/> when they name the same activities.
    /// </summary>
    internal static string? Difference(IReadOnlyList<string> champion, IReadOnlyList<string> candidate)
    {
        var lacking = champion.Where(l => !candidate.Contains(l, StringComparer.OrdinalIgnoreCase)).ToList();
        var added = candidate.Where(l => !champion.Contains(l, StringComparer.OrdinalIgnoreCase)).ToList();
        if (lacking.Count == 0 && added.Count == 0)
        {
            return null;
        }

        var parts = new List<string>(2);
        if (lacking.Count > 0)
        {
            parts.Add($"the candidate lacks {string.Join(", ", lacking)}");
        }

        if (added.Count > 0)
        {
            parts.Add($"the champion lacks {string.Join(", ", added)}");
        }

        return string.Join("; ", parts);
    }

    internal static int[]? Build(IReadOnlyList<string> source, IReadOnlyList<string> target)
    {
        var map = new int[source.Count];
        var identity = source.Count == target.Count;
        var unknown = target.Count;
        for (var i = 0; i < map.Length; i++)
        {
            var j = -1;
            for (var k = 0; k < target.Count; k++)
            {
                if (string.Equals(source[i], target[k], StringComparison.OrdinalIgnoreCase))
                {
                    j = k;
                    break;
                }
            }

            map[i] = j >= 0 ? j : Math.Min(unknown++, RolloutObservations.MaxClasses - 1);
            identity &= map[i] == i;
        }

        return identity ? null : map;
    }
}
