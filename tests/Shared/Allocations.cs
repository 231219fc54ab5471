namespace Har.Testing;

/// <summary>
/// Measures what a steady-state loop allocates on the calling thread. The runtime itself may allocate
/// on the test thread once in a while (tier-up of a method, a first-use cache), a few kilobytes at a
/// time, most often on a loaded machine; code that allocates per call does so in every round. So the
/// loop runs several rounds and the least any round allocated is returned: 0 for allocation-free code,
/// at least one object per call (tens of kilobytes over a round) otherwise.
/// </summary>
internal static class Allocations
{
    /// <summary>Runs <paramref name="round"/> <paramref name="rounds"/> times and returns the fewest bytes one round allocated.</summary>
    public static long LeastPerRound(Action round, int rounds = 3)
    {
        ArgumentNullException.ThrowIfNull(round);
        var least = long.MaxValue;
        for (var r = 0; r < rounds; r++)
        {
            var before = GC.GetAllocatedBytesForCurrentThread();
            round();
            least = Math.Min(least, GC.GetAllocatedBytesForCurrentThread() - before);
        }

        return least;
    }
}
