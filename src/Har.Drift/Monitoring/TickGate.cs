namespace Har.Drift;

/// <summary>
/// Lets one timer tick of a monitor run at a time. A tick that finds the previous one still running is skipped: two
/// ticks would both find the same frames due before either scored them, score them twice, and count their evidence
/// twice in the alarm.
/// </summary>
internal sealed class TickGate
{
    private int _running;

    /// <summary>Runs <paramref name="tick"/> unless a previous tick still runs.</summary>
    /// <param name="tick">The tick's work.</param>
    /// <returns>False when the tick was skipped.</returns>
    public bool TryRun(Action tick)
    {
        if (Interlocked.Exchange(ref _running, 1) == 1)
        {
            return false;
        }

        try
        {
            tick();
            return true;
        }
        finally
        {
            Volatile.Write(ref _running, 0);
        }
    }
}
