namespace Har.Deployment;

/// <summary>The registry's <c>current</c> pointer in PostgreSQL, shared by a fleet (attached by a controller with a connection string).</summary>
public sealed partial class ModelRegistry
{
    private SharedCurrentPointer? _sharedCurrent;

    /// <summary>
    /// Moves the <c>current</c> pointer into the fleet's database: from now on it is read from a cache refreshed by the
    /// controller's follower loop and written by compare-and-set. The first replica on an empty database brings its
    /// file's pointer along; afterwards the database's pointer wins over the file.
    /// </summary>
    internal void UseSharedCurrent(FleetStore store)
    {
        var shared = new SharedCurrentPointer(store);
        shared.Refresh();
        if (shared.Version is null && ReadCurrentFile() is { } local)
        {
            _ = store.TryWriteCurrent(local, 0);
            shared.Refresh();
        }

        _sharedCurrent = shared;
    }

    /// <summary>Gets the shared pointer, when the registry's <c>current</c> lives in a fleet's database.</summary>
    internal SharedCurrentPointer? SharedCurrent => _sharedCurrent;
}

/// <summary>
/// The fleet's <c>current</c> pointer: version and revision, cached (refreshed by every follower poll, so reads never wait
/// on the database) and written by compare-and-set on the revision, read fresh just before: a write that lost the race
/// is refused and re-read, never overwrites another replica's.
/// </summary>
internal sealed class SharedCurrentPointer(FleetStore store)
{
    private readonly Lock _gate = new();
    private string? _version;
    private long _revision;

    public string? Version
    {
        get
        {
            lock (_gate)
            {
                return _version;
            }
        }
    }

    public long Revision
    {
        get
        {
            lock (_gate)
            {
                return _revision;
            }
        }
    }

    /// <summary>Takes a newer value read from the database (an older one is ignored).</summary>
    public void Update(string? version, long revision)
    {
        lock (_gate)
        {
            if (revision >= _revision)
            {
                _version = version;
                _revision = revision;
            }
        }
    }

    public void Refresh()
    {
        var (_, current, revision) = store.ReadHead();
        Update(current, revision);
    }

    public void Write(string version, long? rolloutRevision = null)
    {
        Refresh();
        var (seen, revision) = (Version, Revision);
        if (seen == version)
        {
            return;
        }

        if (store.TryWriteCurrent(version, revision, rolloutRevision))
        {
            Update(version, revision + 1);
            return;
        }

        if (rolloutRevision is { } expected && store.ReadHead().Revision is var now && now != expected)
        {
            // Found from outside: a leader paused while promoting resumed after another replica had finished the
            // promotion and an operator had rolled it back, and set the pointer to the rolled-back version.
            throw new RolloutStateConflictException($"The rollout state moved from revision {expected} to {now} on another replica, so this replica did not set the registry's current pointer to {version} (it is {Version ?? "none"}); the replica that moved it decides.");
        }

        Refresh();
        if (Version != version)
        {
            throw new InvalidOperationException($"The registry's current pointer in {store.Display} moved from {seen ?? "none"} to {Version ?? "none"} (revision {Revision}) on another replica while this one set it to {version}; nothing was overwritten. Re-read the registry and retry.");
        }
    }
}
