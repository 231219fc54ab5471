namespace Har.Deployment;

/// <summary>
/// The simulation's rollout state store: the state object in memory instead of <c>rollout.json</c> written with
/// temp file, fsync, rename and directory fsync. A simulated run is never resumed after a crash (its state folder
/// used to be new and deleted at the end), so durability bought nothing there and cost most of a run's wall time.
/// The controller never changes a state it saved (it clones before each change), so keeping the reference is
/// what reading the file back would give.
/// </summary>
internal sealed class InMemoryRolloutStateStore : IRolloutStateStore
{
    private readonly Dictionary<string, RolloutState> _archive = new(StringComparer.Ordinal);
    private RolloutState? _state;

    public string StatePath => "(in memory)";

    public RolloutState? Load() => _state;

    public void Save(RolloutState state)
    {
        ArgumentNullException.ThrowIfNull(state);
        _state = state;
    }

    public void Archive(RolloutState state)
    {
        ArgumentNullException.ThrowIfNull(state);
        _archive[state.RolloutId] = state;
    }

    public RolloutState? LoadArchived(string rolloutId) => _archive.GetValueOrDefault(rolloutId);
}
