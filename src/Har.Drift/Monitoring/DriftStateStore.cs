namespace Har.Drift;

/// <summary>
/// Where a <see cref="DeviceDriftMonitor"/> keeps each device's drift state when it must outlive the process and follow
/// the device to another process (<see cref="DriftMonitorOptions.StateStore"/>): a fleet of replicas behind a
/// consistent-hash proxy, where a device moves to another replica when one stops or the hash ring changes. One record a
/// device, keyed by its id. A store shared by processes should keep, of the records it is given for a device, the one
/// with the newest evidence (<see cref="DriftStateRecord.LastObservedAt"/>) rather than the last written: a process that
/// no longer serves a device saves it once more when it evicts it, minutes after the device moved on, and that record
/// must not replace the newer one the device's new process saved (<c>FleetDriftStateStore</c> does this).
/// </summary>
/// <remarks>
/// <para>The monitor calls the store from its scoring timer (and <see cref="DeviceDriftMonitor.ScoreNow"/> and
/// <see cref="IDisposable.Dispose"/>), never from <see cref="DeviceDriftMonitor.Observe"/>, and one call at a time.
/// A device seen for the first time in the process is loaded at the next scoring tick, in one batch with the other new
/// devices, and is not scored before; changed devices are saved in batches at the end of a tick. An exception from
/// <see cref="Load"/> or <see cref="Save"/> is logged, counted (<c>har_drift_state_restores_total{result="failed"}</c>,
/// <c>har_drift_state_saves_total{result="failed"}</c>) and retried at the next tick; after three failed loads of a device
/// it is scored fresh, so an unreachable store never stops drift scoring.</para>
/// <para>A record's <see cref="DriftStateRecord.State"/> is opaque: Har.Drift's own versioned encoding of the device's
/// history, alarm and latest report. Store it as it is.</para>
/// </remarks>
public abstract class DriftStateStore
{
    /// <summary>Initializes a new instance of the <see cref="DriftStateStore"/> class.</summary>
    protected DriftStateStore()
    {
    }

    /// <summary>Reads the stored records of the given devices.</summary>
    /// <param name="deviceIds">The devices (distinct, not empty).</param>
    /// <returns>The record of each of them that the store holds, in any order; a device without one is left out.</returns>
    public abstract IReadOnlyList<DriftStateRecord> Load(IReadOnlyList<string> deviceIds);

    /// <summary>Stores records (at most one a device), each replacing the device's stored record if there is one (a shared store: unless the stored one's <see cref="DriftStateRecord.LastObservedAt"/> is newer); all of them or, on an exception, any subset (each is sent again at the next tick).</summary>
    /// <param name="records">The records to store.</param>
    public abstract void Save(IReadOnlyList<DriftStateRecord> records);
}

/// <summary>One device's drift state as a <see cref="DriftStateStore"/> holds it.</summary>
public sealed class DriftStateRecord
{
    /// <summary>Initializes a new instance of the <see cref="DriftStateRecord"/> class.</summary>
    /// <param name="deviceId">The device.</param>
    /// <param name="profileHash">The hash of the reference profile the state was computed against (<see cref="ReferenceProfile.Hash"/>).</param>
    /// <param name="savedAt">When the state was saved (UTC).</param>
    /// <param name="state">The state, in Har.Drift's own versioned encoding.</param>
    /// <param name="lastObservedAt">When the newest frame the state holds arrived (UTC); <see langword="null"/>: <paramref name="savedAt"/>.</param>
    public DriftStateRecord(string deviceId, string profileHash, DateTimeOffset savedAt, ReadOnlyMemory<byte> state, DateTimeOffset? lastObservedAt = null)
    {
        ArgumentException.ThrowIfNullOrEmpty(deviceId);
        ArgumentException.ThrowIfNullOrEmpty(profileHash);
        DeviceId = deviceId;
        ProfileHash = profileHash;
        SavedAt = savedAt.ToUniversalTime();
        State = state;
        LastObservedAt = (lastObservedAt ?? savedAt).ToUniversalTime();
    }

    /// <summary>Gets the device.</summary>
    public string DeviceId { get; }

    /// <summary>Gets the hash of the reference profile the state was computed against: a monitor with another profile ignores the record (its thresholds and evidence do not apply).</summary>
    public string ProfileHash { get; }

    /// <summary>Gets when the state was saved (UTC): with the device's idle time at the save, how far before its first frame in the new process its evidence lies.</summary>
    public DateTimeOffset SavedAt { get; }

    /// <summary>Gets the state: opaque bytes in Har.Drift's own versioned encoding (its history, alarm and latest report).</summary>
    public ReadOnlyMemory<byte> State { get; }

    /// <summary>
    /// Gets when the newest frame the state holds arrived (UTC; for a removed device, its removal): how recent its evidence
    /// is. A record saved when a process evicts a device it stopped receiving is newer than its last frame by the idle time;
    /// of two records of a device, the one observed later holds the newer evidence, whichever was saved last.
    /// </summary>
    public DateTimeOffset LastObservedAt { get; }
}
