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

    /// <summary>The first bytes of the journal beside a state file (<c>{StatePath}.journal</c>).</summary>
    internal static ReadOnlySpan<byte> JournalMagic => "HARDJRNL"u8;

    /// <summary>The version of the journal format this build writes and reads.</summary>
    internal const int JournalFormatVersion = 1;

    /// <summary>The journal of the state file at <paramref name="statePath"/>: the devices whose alarm changed since it was written.</summary>
    internal static string JournalPath(string statePath) => statePath + ".journal";

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
                Log.StateSaved(_logger, _options.MonitorName, saved, whole ? path : JournalPath(path), elapsed);
            }
            catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
            {
                Volatile.Write(ref _stateDirty, 1);
                Volatile.Write(ref _stateUrgent, 1);
                _metrics.StateSaveFailed();
                Log.StateSaveFailed(_logger, _options.MonitorName, whole ? path : JournalPath(path), ex.Message);
            }
        }
    }

    /// <summary>The journal's length past which the next save rewrites the whole file instead (and starts a new journal).</summary>
    private const long MaxJournalBytes = 64 << 20;

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

    /// <summary>
    /// Appends the devices whose alarm changed since the last save, and the devices removed, to the journal (created with
    /// its header when absent), then fsyncs it (under <see cref="_saveGate"/>); returns the records appended. Each record:
    /// a kind (1 a device's state, 2 a removed device), when it was written (Unix ms), its length, its bytes, and the
    /// XXH3-64 of all of them, so that a record torn by a crash is known as such and ends the journal.
    /// </summary>
    private int AppendJournal(string path)
    {
        Volatile.Write(ref _stateUrgent, 0);
        var changed = LiveDevices().Where(d => d.TakeChangesIfUrgent()).ToList();
        var removed = new List<string>();
        while (_removedSinceSnapshot.TryDequeue(out var id))
        {
            removed.Add(id);
        }

        var journal = JournalPath(path);
        var created = !File.Exists(journal);
        using var file = new FileStream(journal, FileMode.Append, FileAccess.Write, FileShare.Read, 1 << 16);
        if (file.Length == 0)
        {
            var header = new StateWriter(file);
            file.Write(JournalMagic);
            header.Write(JournalFormatVersion);
            header.Write(_scorer.Profile.Hash);
            header.Write(Interlocked.Read(ref _snapshotSavedAt));
        }

        using var record = new MemoryStream();
        var rw = new StateWriter(record);
        var appended = 0;
        var writtenAt = _time.GetUtcNow().ToUnixTimeMilliseconds();
        // Removals first: a device removed and seen again since the last save is journaled as removed, then as it is now.
        foreach (var id in removed)
        {
            record.SetLength(0);
            rw.Write(id);
            AppendRecord(file, 2, writtenAt, record);
            appended++;
        }

        foreach (var state in changed)
        {
            record.SetLength(0);
            lock (state.Scoring)
            {
                if (!WriteDevice(rw, state, requireLive: true))
                {
                    continue;
                }
            }

            AppendRecord(file, 1, writtenAt, record);
            appended++;
        }

        file.Flush(flushToDisk: true);
        _journalBytes = file.Length;
        if (created)
        {
            DurableFile.FsyncDirectory(Path.GetDirectoryName(Path.GetFullPath(journal))!);
        }

        return appended;
    }

    private static void AppendRecord(FileStream file, byte kind, long writtenAt, MemoryStream record)
    {
        using var entry = new MemoryStream();
        var w = new StateWriter(entry);
        w.Write(true);
        entry.WriteByte(kind);
        w.Write(writtenAt);
        w.Write((int)record.Length);
        entry.Write(record.GetBuffer().AsSpan(0, (int)record.Length));
        var hash = System.IO.Hashing.XxHash3.HashToUInt64(entry.GetBuffer().AsSpan(0, (int)entry.Length));
        w.Write((long)hash);
        file.Write(entry.GetBuffer().AsSpan(0, (int)entry.Length));
    }

    /// <summary>
    /// Applies the journal of the state file just restored: each intact record in order (a device's state replaces the
    /// restored one, a removal removes it); a journal of another state file (an older generation, another profile) is
    /// ignored, and a record torn by a crash ends it. Returns the records applied and whether the journal ended torn.
    /// </summary>
    internal (int Applied, bool Torn) ApplyJournal(Stream stream)
    {
        var r = new StateReader(stream);
        Span<byte> magic = stackalloc byte[8];
        if (stream.ReadAtLeast(magic, 8, throwOnEndOfStream: false) < 8 || !magic.SequenceEqual(JournalMagic))
        {
            return (0, true);
        }

        if (r.ReadInt32() != JournalFormatVersion || r.ReadString() != _scorer.Profile.Hash || r.ReadInt64() != LastSnapshotSavedAt)
        {
            return (0, false); // another file's journal: nothing in it belongs to this state
        }

        var applied = 0;
        var now = _time.GetTimestamp();
        using var entry = new MemoryStream();
        var hash = new byte[8];
        while (true)
        {
            try
            {
                entry.SetLength(0);
                var more = stream.ReadByte();
                if (more == -1)
                {
                    return (applied, false);
                }

                var head = new byte[13]; // kind, written at, length
                stream.ReadExactly(head);
                var kind = head[0];
                var writtenAt = System.Buffers.Binary.BinaryPrimitives.ReadInt64LittleEndian(head.AsSpan(1));
                var length = System.Buffers.Binary.BinaryPrimitives.ReadInt32LittleEndian(head.AsSpan(9));
                if (more != 1 || kind is not (1 or 2) || length < 0 || length > MaxDeviceRecordBytes)
                {
                    return (applied, true);
                }

                var body = new byte[length];
                stream.ReadExactly(body);
                stream.ReadExactly(hash);
                entry.WriteByte((byte)more);
                entry.Write(head);
                entry.Write(body);
                if ((ulong)System.Buffers.Binary.BinaryPrimitives.ReadInt64LittleEndian(hash) != System.IO.Hashing.XxHash3.HashToUInt64(entry.GetBuffer().AsSpan(0, (int)entry.Length)))
                {
                    return (applied, true);
                }

                var rr = new StateReader(new MemoryStream(body));
                if (kind == 2)
                {
                    var id = rr.ReadString();
                    lock (_gate)
                    {
                        if (_devices.Remove(id, out var gone))
                        {
                            _recent.Remove(gone.Node);
                        }
                    }
                }
                else
                {
                    var (id, idle, history, latest) = ReadDevice(rr, _time.GetUtcNow() - DateTimeOffset.FromUnixTimeMilliseconds(writtenAt));
                    lock (_gate)
                    {
                        if (!_devices.TryGetValue(id, out var state))
                        {
                            if (_devices.Count >= _options.MaxDevices)
                            {
                                applied++;
                                continue;
                            }

                            state = new DeviceState(id, _options.WindowLength, _channels);
                            _devices.Add(id, state);
                            _recent.AddFirst(state.Node);
                        }

                        state.History = history;
                        state.Latest = latest;
                        state.LastSeen = now - (long)(idle.TotalSeconds * _time.TimestampFrequency);
                    }
                }

                applied++;
            }
            catch (Exception ex) when (ex is EndOfStreamException or InvalidDataException or ArgumentException or OverflowException or DecoderFallbackException)
            {
                return (applied, true);
            }
        }
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
