using System.Diagnostics;
using Har.Drift;

namespace Har.Deployment;

/// <summary>
/// The drift state of a fleet's devices in PostgreSQL (<c>har_fleet.drift_devices</c>, one row a device, in the database
/// of <see cref="RolloutControllerOptions.ConnectionString"/>), for <see cref="DriftMonitorOptions.StateStore"/>: a device
/// the consistent-hash proxy moves to another replica (a replica stops, pods are renamed by a redeploy, the ring changes)
/// keeps its raised alarm and the earlier minutes its within-device checks compare with.
/// </summary>
/// <remarks>
/// <para>The schema is created or migrated at the first call (with the rest of the fleet's schema), and a call that fails
/// (PostgreSQL unreachable) throws <see cref="IOException"/>; the monitor counts it and calls again at its next tick.</para>
/// <para>The newest evidence wins, not the last save: a record replaces a device's row only when its
/// <see cref="DriftStateRecord.LastObservedAt"/> is not older than the row's. A replica that evicts a device the proxy
/// moved away from it (10 minutes idle by default) saves its state once more, minutes after the device's new replica saved
/// newer minutes of it; that save is refused. (Before, it replaced them, and a device moved on from there found its alarm
/// and its newest history gone.) Two replicas that both receive frames of one device while the hash ring changes still
/// replace each other's rows, each with its newest frames. The times are each replica's clock: keep them synchronised
/// (NTP); a skew smaller than the device's silence does not change which record wins. Rows not saved for the retention
/// period (devices gone from the fleet) are deleted by whichever replica saves next, at most once an hour per store.</para>
/// </remarks>
public sealed class FleetDriftStateStore : DriftStateStore, IDisposable
{
    /// <summary>How often a store prunes rows past the retention.</summary>
    internal static readonly TimeSpan PruneInterval = TimeSpan.FromHours(1);

    private readonly string _connectionString;
    private readonly TimeSpan _retention;
    private readonly Lock _gate = new();
    private FleetStore? _store;
    private long _lastPrune;
    private long _superseded;
    private bool _disposed;

    /// <summary>Initializes a new instance of the <see cref="FleetDriftStateStore"/> class. Nothing is connected before the first call.</summary>
    /// <param name="connectionString">The fleet's Npgsql connection string (<c>ConnectionStrings:Har</c>).</param>
    /// <param name="retention">How long a device's row is kept after its last save; the default value is 7 days.</param>
    public FleetDriftStateStore(string connectionString, TimeSpan? retention = null)
    {
        ArgumentException.ThrowIfNullOrEmpty(connectionString);
        try
        {
            // Checked here: at a tick, a bad string would be counted as a failed lookup and retried forever, like an outage.
            _ = new Npgsql.NpgsqlConnectionStringBuilder(connectionString);
        }
        catch (ArgumentException ex)
        {
            throw new ArgumentException($"The connection string is not a valid Npgsql connection string ({ex.Message}); expected e.g. 'Host=db;Database=har;Username=har;Password=...'.", nameof(connectionString), ex);
        }

        _retention = retention ?? TimeSpan.FromDays(7);
        ArgumentOutOfRangeException.ThrowIfLessThan(_retention, TimeSpan.FromHours(1), nameof(retention));
        _connectionString = connectionString;
    }

    /// <inheritdoc/>
    public override IReadOnlyList<DriftStateRecord> Load(IReadOnlyList<string> deviceIds)
    {
        ArgumentNullException.ThrowIfNull(deviceIds);
        return deviceIds.Count == 0 ? [] : Store().LoadDriftDevices(deviceIds);
    }

    /// <inheritdoc/>
    public override void Save(IReadOnlyList<DriftStateRecord> records)
    {
        ArgumentNullException.ThrowIfNull(records);
        var store = Store();
        if (records.Count > 0)
        {
            Interlocked.Add(ref _superseded, store.SaveDriftDevices(records));
        }

        var last = Interlocked.Read(ref _lastPrune);
        if (last == 0 || Stopwatch.GetElapsedTime(last) >= PruneInterval)
        {
            Prune();
        }
    }

    /// <summary>Gets how many records this store did not write because the device's row held newer evidence.</summary>
    internal long Superseded => Interlocked.Read(ref _superseded);

    /// <summary>Deletes the rows past the retention now (unless another replica is pruning); returns how many.</summary>
    internal int Prune()
    {
        var deleted = Store().PruneDriftDevices(_retention);
        Interlocked.Exchange(ref _lastPrune, Stopwatch.GetTimestamp());
        return deleted;
    }

    /// <inheritdoc/>
    public void Dispose()
    {
        lock (_gate)
        {
            _disposed = true;
            _store?.Dispose();
            _store = null;
        }
    }

    /// <summary>Opens (creating or migrating the schema) at the first call, and again after a failed open.</summary>
    private FleetStore Store()
    {
        lock (_gate)
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            return _store ??= FleetStore.Open(_connectionString);
        }
    }
}
