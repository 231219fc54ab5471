using System.Diagnostics;
using System.Text;

namespace Har.Drift;

/// <summary>The per-device drift state on disk (<see cref="DriftMonitorOptions.StatePath"/>): saved after a scoring tick that changed an alarm, every StateSaveInterval while anything changed, and at dispose; restored at construction.</summary>
public sealed partial class DeviceDriftMonitor
{
    /// <summary>The first bytes of a drift state file.</summary>
    internal static ReadOnlySpan<byte> StateMagic => "HARDRIFT"u8;

    /// <summary>The version of the drift state format this build writes and reads.</summary>
    internal const int StateFormatVersion = 1;

    /// <summary>
    /// The longest restart gap put between a device's saved evidence and its first frame after the restart: far beyond
    /// every horizon of the checks (the turns of the last 150 s), so a longer outage changes nothing they compute.
    /// </summary>
    internal static readonly TimeSpan MaxRestartGap = TimeSpan.FromDays(1);

    /// <summary>The most devices a state file may hold (a bound against a damaged count, far above any MaxDevices in use).</summary>
    private const int MaxStateDevices = 1 << 22;

    /// <summary>The largest record of one device (a full history is about 250 KB; a bound against a damaged length).</summary>
    private const int MaxDeviceRecordBytes = 64 << 20;

    private readonly Lock _saveGate = new();
    private readonly System.Collections.Concurrent.ConcurrentQueue<string> _removedSinceSnapshot = new(); // for the journal
    private int _stateDirty; // 1 when a device was scored, removed or evicted since the last checkpoint
    private int _stateUrgent; // 1 when an alarm was raised, lowered or changed its cause (or a device was removed) since the last checkpoint
    private long _lastSave; // time provider timestamp of the last save (or of the restore)
    private long _snapshotSavedAt; // the saved-at (Unix ms) in the header of the state file on disk, 0 before any: the journal's generation
    private long _journalBytes; // the journal's length since the snapshot
    private Exception? _stateSaveError; // the latest save's error, null after a save that succeeded

    /// <summary>
    /// Gets the error of the latest save of the drift state (<see cref="DriftMonitorOptions.StatePath"/> or
    /// <see cref="DriftMonitorOptions.StateStore"/>) when it failed, or <see langword="null"/> when it succeeded or none
    /// has run. The state is saved in the background, at the end of scoring ticks, and at <see cref="Dispose"/>; a save
    /// that fails is logged (a Warning), counted in <c>har_drift_state_saves_total{result="failed"}</c> and retried at the
    /// next tick, and is never thrown: read this after <see cref="Dispose"/> to know whether the final save kept the state
    /// (an <see cref="IOException"/> naming the file, the failure of the store as it threw it).
    /// </summary>
    public Exception? StateSaveError => Volatile.Read(ref _stateSaveError);

    /// <summary>
    /// Writes every live device's drift state to <paramref name="stream"/>: its history (turns, still postures, its own
    /// earlier minutes), its alarm's statistics and episode, its latest report, how long it has been silent and where its
    /// stream stood. Not the frames of its current window (new frames refill it). Devices are locked one at a time, while
    /// their state is copied to a buffer, so scoring and <see cref="Observe"/> go on meanwhile.
    /// </summary>
    /// <returns>The devices written.</returns>
    internal int SaveState(Stream stream)
    {
        List<DeviceState> devices;
        lock (_gate)
        {
            devices = [.. _recent]; // most recently seen first: a smaller MaxDevices keeps these on load
        }

        var hashing = new HashingStream(stream);
        var w = new StateWriter(hashing);
        hashing.Write(StateMagic);
        w.Write(StateFormatVersion);
        w.Write(_scorer.Profile.Hash);
        var savedAt = _time.GetUtcNow().ToUnixTimeMilliseconds();
        w.Write(savedAt);
        LastSnapshotSavedAt = savedAt;
        using var buffer = new MemoryStream();
        var bw = new StateWriter(buffer);
        var saved = 0;
        foreach (var state in devices)
        {
            buffer.SetLength(0);
            lock (state.Scoring)
            {
                if (!WriteDevice(bw, state, requireLive: true))
                {
                    continue; // evicted or removed meanwhile
                }
            }

            // One record per device: its length, then its bytes (read back in one piece, hashed in one call).
            w.Write(true);
            w.Write((int)buffer.Length);
            hashing.Write(buffer.GetBuffer().AsSpan(0, (int)buffer.Length));
            saved++;
        }

        w.Write(false);
        hashing.WriteHash();
        return saved;
    }

    /// <summary>Gets the saved-at of the last state <see cref="SaveState"/> wrote or <see cref="LoadState"/> read (Unix ms).</summary>
    internal long LastSnapshotSavedAt { get; private set; }

    /// <summary>
    /// Restores the devices <see cref="SaveState"/> wrote, beside the live ones (a device already live keeps its own
    /// state), at most <see cref="DriftMonitorOptions.MaxDevices"/> in all, the most recently seen first. Every saved
    /// frame position is moved to before frame 0 of the device's new stream, by the frames the restart took (the wall
    /// time since the device's last frame before the save, at the profile's sample rate, at most <see cref="MaxRestartGap"/>),
    /// so the checks' time horizons keep their meaning. A device's idle time goes on from where it stood at the save:
    /// the outage does not count against <see cref="DriftMonitorOptions.DeviceIdleTimeout"/>. Nothing is restored
    /// unless the whole stream reads back intact.
    /// </summary>
    /// <returns>The devices restored, the devices left out for the cap, and the time since the save.</returns>
    /// <exception cref="InvalidDataException">Not a drift state file, another format version, damaged or truncated (<see cref="EndOfStreamException"/>), </exception>
    /// <exception cref="DriftStateProfileException">Saved against another reference profile.</exception>
    internal (int Restored, int Dropped, TimeSpan SinceSave) LoadState(Stream stream)
    {
        var hashing = new HashingStream(stream);
        var r = new StateReader(hashing);
        Span<byte> magic = stackalloc byte[8];
        hashing.ReadExactly(magic);
        if (!magic.SequenceEqual(StateMagic))
        {
            throw new InvalidDataException("not a drift state file (it does not start with HARDRIFT)");
        }

        var version = r.ReadInt32();
        if (version != StateFormatVersion)
        {
            throw new InvalidDataException($"drift state format version {version}; this Har.Drift reads version {StateFormatVersion}");
        }

        var profile = r.ReadString();
        if (profile != _scorer.Profile.Hash)
        {
            throw new DriftStateProfileException(profile, _scorer.Profile.Hash);
        }

        var savedAtMs = r.ReadInt64();
        var savedAt = DateTimeOffset.FromUnixTimeMilliseconds(savedAtMs);
        var sinceSave = _time.GetUtcNow() - savedAt;
        var now = _time.GetTimestamp();
        var loaded = new List<DeviceState>();
        using var record = new MemoryStream();
        var rr = new StateReader(record);
        while (r.ReadBoolean())
        {
            if (loaded.Count >= MaxStateDevices)
            {
                throw new InvalidDataException($"more than {MaxStateDevices} devices");
            }

            var length = r.ReadCount(MaxDeviceRecordBytes, "device record length");
            record.SetLength(length);
            record.Position = 0;
            hashing.ReadExactly(record.GetBuffer().AsSpan(0, length));
            var (id, idle, history, latest) = ReadDevice(rr, sinceSave);
            var state = new DeviceState(id, _options.WindowLength, _channels) { History = history, Latest = latest };

            if (record.Position != length)
            {
                throw new InvalidDataException($"device '{state.Id}': {length - record.Position} bytes of its record left unread");
            }

            state.LastSeen = now - (long)(idle.TotalSeconds * _time.TimestampFrequency);
            loaded.Add(state);
        }

        if (!hashing.ReadAndCheckHash())
        {
            throw new InvalidDataException("the checksum does not match the content (the file was damaged)");
        }

        if (stream.ReadByte() != -1)
        {
            throw new InvalidDataException("bytes follow the checksum");
        }

        LastSnapshotSavedAt = savedAtMs;

        var restored = 0;
        lock (_gate)
        {
            foreach (var state in loaded)
            {
                if (_devices.Count >= _options.MaxDevices)
                {
                    break;
                }

                if (_devices.TryAdd(state.Id, state))
                {
                    _recent.AddLast(state.Node);
                    restored++;
                }
            }
        }

        PublishDevices();
        return (restored, loaded.Count - restored, sinceSave);
    }

    /// <summary>
    /// Saves the state to <see cref="DriftMonitorOptions.StatePath"/>. The whole file (temp file, fsync, rename, directory
    /// fsync) when anything changed and <see cref="DriftMonitorOptions.StateSaveInterval"/> has passed, or
    /// <paramref name="force"/> (dispose) and anything changed, or there is no file yet. When an alarm changed in between,
    /// only the devices whose alarm changed (and the ones removed) are appended to the file's journal and fsynced: the
    /// whole file is up to about 250 KB per device, and rewriting it at every tick with an alarm change wrote 1.9 MiB/s
    /// for 300 devices (a fleet's false-alarm budget alone changes an alarm every few ticks at 1,000 devices).
    /// A failure is logged, counted and retried at the next tick.
    /// </summary>
    internal void Checkpoint(bool force = false)
    {
        if (_store is not null)
        {
            lock (_saveGate)
            {
                SaveToStore(_store, force, unsavedOnly: false);
            }

            return;
        }

        if (_options.StatePath is not { Length: > 0 } path || Volatile.Read(ref _stateDirty) == 0)
        {
            return;
        }

        var now = _time.GetTimestamp();
        var intervalDue = _time.GetElapsedTime(Interlocked.Read(ref _lastSave), now) >= _options.StateSaveInterval;
        if (!force && Volatile.Read(ref _stateUrgent) == 0 && !intervalDue)
        {
            return;
        }

        lock (_saveGate)
        {
            var whole = force || intervalDue || Interlocked.Read(ref _snapshotSavedAt) == 0 || _journalBytes > MaxJournalBytes;
            var began = Stopwatch.GetTimestamp();
            try
            {
                var saved = whole ? SaveWhole(path, now) : AppendJournal(path);
                var elapsed = Stopwatch.GetElapsedTime(began);
                _metrics.StateSaved(elapsed);
                Volatile.Write(ref _stateSaveError, null);
                Log.StateSaved(_logger, _options.MonitorName, saved, whole ? path : JournalPath(path), elapsed);
            }
            catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
            {
                Volatile.Write(ref _stateDirty, 1);
                Volatile.Write(ref _stateUrgent, 1);
                Volatile.Write(ref _stateSaveError, new IOException($"Could not save the drift state to '{(whole ? path : JournalPath(path))}' (DriftMonitorOptions.StatePath): {ex.Message}", ex));
                _metrics.StateSaveFailed();
                Log.StateSaveFailed(_logger, _options.MonitorName, whole ? path : JournalPath(path), ex.Message);
            }
        }
    }

    /// <summary>Rewrites the whole state file and removes its journal (under <see cref="_saveGate"/>); returns the devices written.</summary>
    private int SaveWhole(string path, long now)
    {
        // Flags first: a change while the file is written is either in it or marks the state again.
        Volatile.Write(ref _stateDirty, 0);
        Volatile.Write(ref _stateUrgent, 0);
        while (_removedSinceSnapshot.TryDequeue(out _))
        {
        }

        foreach (var state in LiveDevices())
        {
            state.TakeChanges();
        }

        var saved = 0;
        DurableFile.WriteAtomic(path, stream => saved = SaveState(stream));
        Interlocked.Exchange(ref _snapshotSavedAt, LastSnapshotSavedAt);
        Interlocked.Exchange(ref _lastSave, now);

        // The journal belongs to the file before (its generation is that file's saved-at, so a journal left by a crash here is ignored).
        File.Delete(JournalPath(path));
        _journalBytes = 0;
        return saved;
    }

    private List<DeviceState> LiveDevices()
    {
        lock (_gate)
        {
            return [.. _recent];
        }
    }

    /// <summary>
    /// Writes one device's record, the same in the state file and in a <see cref="DriftStateStore"/> record: its id, how
    /// long it has been silent, where its stream stood, its history and its latest report. The caller holds its scoring lock.
    /// </summary>
    /// <returns>False when <paramref name="requireLive"/> and the device was evicted or removed meanwhile (nothing written).</returns>
    private bool WriteDevice(StateWriter w, DeviceState state, bool requireLive)
    {
        long written, idleMs;
        lock (_gate)
        {
            if (requireLive && (!_devices.TryGetValue(state.Id, out var live) || live != state))
            {
                return false;
            }

            written = state.Removed ? 0 : state.Frames.Written; // a removed device's record is a fresh state
            idleMs = (long)_time.GetElapsedTime(state.LastSeen).TotalMilliseconds;
        }

        w.Write(state.Id);
        w.Write(Math.Max(0, idleMs));
        w.Write(Math.Max(written, state.History.FramesSeen));
        state.History.Save(w);
        w.Write(state.Latest is not null);
        if (state.Latest is { } latest)
        {
            ReportState.Write(w, latest);
        }

        return true;
    }

    /// <summary>
    /// Reads what <see cref="WriteDevice"/> wrote, every frame position moved to before frame 0 of the device's stream in
    /// this process by the frames of the gap (<paramref name="sinceSave"/> plus the device's idle time at the save, at the
    /// profile's sample rate, at most <see cref="MaxRestartGap"/>).
    /// </summary>
    private (string Id, TimeSpan Idle, DeviceHistory History, DriftReport? Latest) ReadDevice(StateReader r, TimeSpan sinceSave)
    {
        var id = r.ReadString();
        var idle = TimeSpan.FromMilliseconds(r.ReadInt64());
        var streamEnd = r.ReadInt64();
        var rate = _scorer.Profile.SampleRateHz > 0 ? _scorer.Profile.SampleRateHz : 0;
        var gap = Math.Clamp((sinceSave + idle).TotalSeconds, 0, MaxRestartGap.TotalSeconds);
        var history = new DeviceHistory();
        history.Restore(r, streamEnd + (long)Math.Round(gap * rate));
        var latest = r.ReadBoolean() ? ReportState.Read(r, id) : null;
        return (id, idle, history, latest);
    }

    /// <summary>Gets a live device's history (tests and benchmarks fill and inspect it), or null.</summary>
    internal DeviceHistory? HistoryOf(string deviceId)
    {
        lock (_gate)
        {
            return _devices.TryGetValue(deviceId, out var state) ? state.History : null;
        }
    }

    /// <summary>Marks the state as changed since the last checkpoint; <paramref name="urgent"/>: an alarm changed (saved at the end of the tick).</summary>
    private void StateChanged(bool urgent = false)
    {
        Volatile.Write(ref _stateDirty, 1);
        if (urgent)
        {
            Volatile.Write(ref _stateUrgent, 1);
        }
    }

    /// <summary>
    /// Checks at construction that the state can be saved at <paramref name="path"/>. A path no save could ever write is a
    /// configuration mistake and is thrown: not a valid path, a folder, or a path under a file. Whether the folder can be
    /// created and written now (a probe file, removed at once, as every save writes a temp file there and renames it) is
    /// the volume's state, which can change while the process runs (a read-only remount, a full disk, permissions): that
    /// failure is returned, for <see cref="StateSaveError"/> and a Warning, and saves are retried at every tick as before.
    /// Without the check, such paths failed only in the log, and a monitor without a logger lost its state in silence.
    /// </summary>
    /// <returns>The probe's failure, or <see langword="null"/> when the folder can be written.</returns>
    /// <exception cref="IOException">The path can never hold the state; the message names it and why.</exception>
    private static IOException? CheckStateFolder(string path)
    {
        string full;
        try
        {
            full = Path.GetFullPath(path);
        }
        catch (Exception ex) when (ex is ArgumentException or NotSupportedException or PathTooLongException)
        {
            throw new IOException($"DriftMonitorOptions.StatePath '{path}' is not a usable file path ({ex.Message}); expected the path of a file in a folder this process can write, or no StatePath to keep the drift state in memory only.", ex);
        }

        if (Directory.Exists(full))
        {
            throw new IOException($"DriftMonitorOptions.StatePath '{path}' is a folder; expected the path of the state file (e.g. '{Path.Combine(path, "drift-state.bin")}').");
        }

        var dir = Path.GetDirectoryName(full)!;
        for (var ancestor = dir; !string.IsNullOrEmpty(ancestor); ancestor = Path.GetDirectoryName(ancestor))
        {
            if (File.Exists(ancestor))
            {
                throw new IOException($"DriftMonitorOptions.StatePath '{path}' cannot be saved: '{ancestor}' is a file, not a folder; expected a file path in a folder this process can create and write, or no StatePath to keep the drift state in memory only.");
            }

            if (Directory.Exists(ancestor))
            {
                break;
            }
        }

        try
        {
            Directory.CreateDirectory(dir);
            var probe = Path.Combine(dir, $".{Path.GetFileName(full)}.{Convert.ToHexStringLower(System.Security.Cryptography.RandomNumberGenerator.GetBytes(6))}.probe");
            using (new FileStream(probe, FileMode.CreateNew, FileAccess.Write, FileShare.None, 1, FileOptions.DeleteOnClose))
            {
            }

            return null;
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            return new IOException($"DriftMonitorOptions.StatePath '{path}' cannot be saved now: its folder '{dir}' cannot be created or written ({ex.Message}); the state is kept in memory and saved once the folder is writable (tried at every scoring tick).", ex);
        }
    }

    /// <summary>Restores the state file at construction; a file that cannot be used is logged, set aside and the monitor starts empty.</summary>
    private void RestoreState(string path)
    {
        if (!File.Exists(path))
        {
            return;
        }

        try
        {
            using (var file = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 16, FileOptions.SequentialScan))
            {
                var (restored, dropped, sinceSave) = LoadState(file);
                Log.StateRestored(_logger, _options.MonitorName, restored, path, sinceSave, dropped, _options.MaxDevices);
            }

            Interlocked.Exchange(ref _snapshotSavedAt, LastSnapshotSavedAt);
            var journal = JournalPath(path);
            if (File.Exists(journal))
            {
                try
                {
                    using var file = new FileStream(journal, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 16, FileOptions.SequentialScan);
                    var (applied, torn) = ApplyJournal(file);
                    Log.StateJournalApplied(_logger, _options.MonitorName, applied, journal, torn);
                }
                catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
                {
                    // The state file stands as restored; the next whole save replaces the journal.
                    Log.StateJournalApplied(_logger, _options.MonitorName, 0, journal, torn: true);
                }

                // The next save rewrites the whole file and starts a new journal: nothing is appended after a torn record
                // or to a journal of another file, where a restore would not read it.
                _journalBytes = long.MaxValue;
                PublishDevices();
            }
        }
        catch (DriftStateProfileException ex)
        {
            var aside = SetAside(path, $".profile-{ex.SavedProfile[..Math.Min(12, ex.SavedProfile.Length)]}");
            Log.StateOtherProfile(_logger, _options.MonitorName, path, ex.SavedProfile, ex.CurrentProfile, aside ?? path);
        }
        catch (Exception ex) when (ex is InvalidDataException or EndOfStreamException or IOException or UnauthorizedAccessException or ArgumentException or OverflowException or DecoderFallbackException)
        {
            var aside = SetAside(path, ".bad");
            Log.StateUnreadable(_logger, ex, _options.MonitorName, path, ex.Message, aside ?? path);
        }
    }

    /// <summary>Renames a state file that cannot be used, so the next checkpoint does not overwrite it; null when it cannot be moved.</summary>
    private static string? SetAside(string path, string suffix)
    {
        try
        {
            var aside = path + suffix;
            File.Move(path, aside, overwrite: true);
            return aside;
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            return null;
        }
    }
}

/// <summary>A drift state file saved against another reference profile: its thresholds and evidence do not apply.</summary>
internal sealed class DriftStateProfileException(string savedProfile, string currentProfile)
    : IOException($"the drift state was saved against reference profile {savedProfile[..Math.Min(12, savedProfile.Length)]}, not the current {currentProfile[..Math.Min(12, currentProfile.Length)]}")
{
    public string SavedProfile { get; } = savedProfile;

    public string CurrentProfile { get; } = currentProfile;
}
