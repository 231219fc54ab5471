using System.Buffers.Binary;
using System.Diagnostics;
using System.IO.Hashing;
using System.Runtime.InteropServices;
using System.Text;

namespace Har.Drift;

/// <summary>
/// The per-device drift state in a <see cref="DriftStateStore"/> (<see cref="DriftMonitorOptions.StateStore"/>): a device
/// new to this process is looked up at the next scoring tick and scored only after it; each changed device is saved on
/// its own schedule.
/// </summary>
public sealed partial class DeviceDriftMonitor
{
    /// <summary>The failed lookups of a device in the state store after which it is scored fresh.</summary>
    internal const int MaxRestoreAttempts = 3;

    /// <summary>
    /// The version of a <see cref="DriftStateRecord.State"/> this build writes: the device's record as in the state file
    /// (format <see cref="StateFormatVersion"/>), then the XXH3-64 of every byte before it, as the state file ends with
    /// one. Version 1 (the release before) carried no checksum; such records are still read.
    /// </summary>
    internal const int StoreRecordVersion = 2;

    /// <summary>Devices evicted or removed whose changes are not saved to the store yet (under <see cref="_gate"/>).</summary>
    private readonly Dictionary<string, DeviceState> _unsaved = new(StringComparer.Ordinal);

    /// <summary>
    /// Creates the monitor of a device new to this process (under <see cref="_gate"/>). With a store: a device evicted or
    /// removed whose record is not saved yet takes that state back (evicted) or starts fresh and replaces its record
    /// (removed); any other is queued for its lookup in the store at the next tick.
    /// </summary>
    private DeviceState NewDevice(string deviceId, long now)
    {
        if (_store is not null && _unsaved.Remove(deviceId, out var left))
        {
            if (!left.Removed)
            {
                return left;
            }

            var fresh = new DeviceState(deviceId, _options.WindowLength, _channels) { FirstSeen = _time.GetUtcNow(), LastSaved = now };
            fresh.Changed(urgent: true);
            return fresh;
        }

        return new DeviceState(deviceId, _options.WindowLength, _channels)
        {
            FirstSeen = _time.GetUtcNow(),
            LastSaved = now,
            RestorePending = _store is not null,
        };
    }

    /// <summary>Gives a removed device a fresh state and queues it for saving, so that its stored record is forgotten too.</summary>
    private void Forget(DeviceState removed)
    {
        lock (removed.Scoring)
        {
            removed.Removed = true;
            removed.History = new DeviceHistory();
            removed.Latest = null;
            removed.Changed(urgent: true);
        }

        lock (_gate)
        {
            if (_devices.TryGetValue(removed.Id, out var back))
            {
                // It came back meanwhile, fresh: its lookup would find the record being forgotten.
                back.RestorePending = false;
                back.Changed(urgent: true);
            }
            else
            {
                QueueUnsaved(removed);
            }
        }
    }

    /// <summary>
    /// Keeps a device that left the live set (evicted or removed) until the next save to the store (under <see cref="_gate"/>).
    /// At most <see cref="DriftMonitorOptions.MaxDevices"/> wait, so a store that keeps failing does not hold the memory of
    /// every device evicted meanwhile: beyond it, the changes of the device leaving are lost (its stored record stays as it was).
    /// </summary>
    private void QueueUnsaved(DeviceState state)
    {
        if (_unsaved.Count < _options.MaxDevices || _unsaved.ContainsKey(state.Id))
        {
            _unsaved[state.Id] = state;
        }
    }

    /// <summary>
    /// Looks up, in one batch, every live device waiting for its lookup, and restores the records found (saved against
    /// this profile) into them. The changes of evicted and removed devices are saved first, so a device that left and came
    /// back finds its newest record. A failure leaves the devices queued; after <see cref="MaxRestoreAttempts"/> a device is
    /// scored fresh.
    /// </summary>
    private void RestoreQueued(DriftStateStore store)
    {
        lock (_saveGate)
        {
            List<DeviceState>? pending = null;
            lock (_gate)
            {
                foreach (var state in _recent)
                {
                    if (state.RestorePending)
                    {
                        (pending ??= []).Add(state);
                    }
                }
            }

            if (pending is null)
            {
                return;
            }

            IReadOnlyList<DriftStateRecord> records;
            try
            {
                if (!SaveToStore(store, force: false, unsavedOnly: true))
                {
                    throw new IOException("the changes of devices evicted or removed could not be saved first");
                }

                var ids = new string[pending.Count];
                for (var i = 0; i < ids.Length; i++)
                {
                    ids[i] = pending[i].Id;
                }

                records = store.Load(ids) ?? throw new InvalidOperationException($"{store.GetType().Name}.Load returned null");
            }
            catch (Exception ex)
            {
                var gaveUp = 0;
                lock (_gate)
                {
                    foreach (var state in pending)
                    {
                        if (++state.RestoreFailures >= MaxRestoreAttempts && state.RestorePending)
                        {
                            state.RestorePending = false;
                            gaveUp++;
                        }
                    }
                }

                _metrics.StateRestores("failed", pending.Count);
                Log.StoreLoadFailed(_logger, ex, _options.MonitorName, pending.Count, ex.Message, gaveUp, MaxRestoreAttempts);
                return;
            }

            var byId = new Dictionary<string, DriftStateRecord>(records.Count, StringComparer.Ordinal);
            foreach (var record in records)
            {
                if (record is not null)
                {
                    byId[record.DeviceId] = record;
                }
            }

            int restored = 0, absent = 0, otherProfile = 0, unreadable = 0;
            foreach (var state in pending)
            {
                if (!byId.TryGetValue(state.Id, out var record))
                {
                    absent++;
                }
                else if (!string.Equals(record.ProfileHash, _scorer.Profile.Hash, StringComparison.Ordinal))
                {
                    otherProfile++;
                    Log.StoreOtherProfile(_logger, _options.MonitorName, state.Id, record.ProfileHash, _scorer.Profile.Hash);
                }
                else
                {
                    try
                    {
                        var (history, latest) = Decode(record, state);
                        lock (state.Scoring)
                        {
                            if (!state.Removed)
                            {
                                state.History = history;
                                state.Latest = latest;
                            }
                        }

                        restored++;
                    }
                    catch (Exception ex) when (ex is InvalidDataException or EndOfStreamException or ArgumentException or OverflowException or DecoderFallbackException)
                    {
                        unreadable++;
                        Log.StoreRecordUnreadable(_logger, ex, _options.MonitorName, state.Id, ex.Message);
                    }
                }
            }

            lock (_gate)
            {
                foreach (var state in pending)
                {
                    state.RestorePending = false;
                }

                PublishCounts();
            }

            _metrics.StateRestores("restored", restored);
            _metrics.StateRestores("absent", absent);
            _metrics.StateRestores("other_profile", otherProfile);
            _metrics.StateRestores("failed", unreadable);
            Log.StoreRestored(_logger, _options.MonitorName, pending.Count, restored, absent, otherProfile);
        }
    }

    /// <summary>
    /// Reads a stored record into a history and a latest report for <paramref name="state"/>: the record's version, the
    /// device's record as in the state file, and its checksum (<see cref="StoreRecordVersion"/>); its frame positions
    /// moved to before the first frame this process saw from the device by the gap since the save.
    /// </summary>
    private (DeviceHistory History, DriftReport? Latest) Decode(DriftStateRecord record, DeviceState state)
    {
        var bytes = MemoryMarshal.TryGetArray(record.State, out var segment) ? segment : new ArraySegment<byte>(record.State.ToArray());
        var version = bytes.Count >= sizeof(int) ? BinaryPrimitives.ReadInt32LittleEndian(bytes) : throw new InvalidDataException($"a record of {bytes.Count} bytes");
        if (version == StoreRecordVersion)
        {
            // A bit flipped in storage would otherwise read as other numbers: the device's history, silently wrong.
            if (bytes.Count < sizeof(int) + sizeof(ulong)
                || XxHash3.HashToUInt64(bytes.AsSpan(0, bytes.Count - sizeof(ulong))) != BinaryPrimitives.ReadUInt64LittleEndian(bytes.AsSpan(bytes.Count - sizeof(ulong))))
            {
                throw new InvalidDataException("the checksum does not match the record (it was damaged)");
            }

            bytes = bytes[..^sizeof(ulong)];
        }
        else if (version != StateFormatVersion)
        {
            throw new InvalidDataException($"drift state record version {version}; this Har.Drift reads versions {StateFormatVersion} and {StoreRecordVersion}");
        }

        using var stream = new MemoryStream(bytes.Array!, bytes.Offset, bytes.Count, writable: false);
        var r = new StateReader(stream);
        _ = r.ReadInt32();

        var (id, _, history, latest) = ReadDevice(r, state.FirstSeen - record.SavedAt);
        if (!string.Equals(id, state.Id, StringComparison.Ordinal))
        {
            throw new InvalidDataException($"the record holds device '{id}'");
        }

        if (stream.Position != stream.Length)
        {
            throw new InvalidDataException($"{stream.Length - stream.Position} bytes of the record left unread");
        }

        return (history, latest);
    }

    /// <summary>
    /// The most devices a tick saves to the store because their <see cref="DriftMonitorOptions.StateSaveInterval"/> passed:
    /// twice the share of <paramref name="live"/> devices one tick (<see cref="DriftMonitorOptions.ScoreInterval"/>) would
    /// save if their saves were spread evenly over the interval, at least one; unbounded with a zero interval.
    /// </summary>
    internal int PeriodicSaveBudget(int live)
    {
        if (_options.StateSaveInterval <= TimeSpan.Zero)
        {
            return int.MaxValue;
        }

        var share = 2.0 * live * _options.ScoreInterval.TotalSeconds / _options.StateSaveInterval.TotalSeconds;
        return (int)Math.Clamp(Math.Ceiling(share), 1, int.MaxValue);
    }

    /// <summary>
    /// Saves to the store, in one batch, the devices evicted or removed since their last save and (unless
    /// <paramref name="unsavedOnly"/>) every live device that changed and whose alarm changed, or whose last save is
    /// <see cref="DriftMonitorOptions.StateSaveInterval"/> old (at most <see cref="PeriodicSaveBudget"/> of those a tick,
    /// the longest waiting first), or any that changed when <paramref name="force"/>. A device
    /// still waiting for its lookup is never saved (its stored record would be lost). Under <see cref="_saveGate"/>.
    /// </summary>
    /// <returns>False when the store failed (the devices are saved again at the next tick).</returns>
    private bool SaveToStore(DriftStateStore store, bool force, bool unsavedOnly)
    {
        var now = _time.GetTimestamp();
        var batch = new List<DeviceState>();
        List<DeviceState>? periodic = null;
        int live;
        lock (_gate)
        {
            batch.AddRange(_unsaved.Values);
            live = _devices.Count;
            if (!unsavedOnly)
            {
                foreach (var state in _recent)
                {
                    if (state.RestorePending || !state.Dirty)
                    {
                        continue;
                    }

                    if (force || state.Urgent)
                    {
                        batch.Add(state);
                    }
                    else if (_time.GetElapsedTime(state.LastSaved, now) >= _options.StateSaveInterval)
                    {
                        (periodic ??= []).Add(state);
                    }
                }
            }
        }

        if (periodic is not null)
        {
            // Devices first seen together (every device after a restart) fall due together: at most twice a tick's share
            // of the live devices are saved per tick, those waiting longest first, so the saves spread over the interval
            // instead of one tick writing every device (about 10 s and 260 MB of WAL for 1,000 full histories).
            var budget = PeriodicSaveBudget(live);
            if (periodic.Count > budget)
            {
                periodic.Sort(static (a, b) => a.LastSaved.CompareTo(b.LastSaved));
                periodic.RemoveRange(budget, periodic.Count - budget);
            }

            batch.AddRange(periodic);
        }

        if (batch.Count == 0)
        {
            return true;
        }

        var records = new DriftStateRecord[batch.Count];
        var urgent = new bool[batch.Count];
        var savedAt = _time.GetUtcNow();
        using var buffer = new MemoryStream();
        var w = new StateWriter(buffer);
        Span<byte> checksum = stackalloc byte[sizeof(ulong)];
        for (var i = 0; i < batch.Count; i++)
        {
            var state = batch[i];
            buffer.SetLength(0);
            w.Write(StoreRecordVersion);
            lock (state.Scoring)
            {
                urgent[i] = state.TakeChanges();
                WriteDevice(w, state, requireLive: false);
            }

            BinaryPrimitives.WriteUInt64LittleEndian(checksum, XxHash3.HashToUInt64(buffer.GetBuffer().AsSpan(0, (int)buffer.Length)));
            buffer.Write(checksum);

            // How recent its evidence is: its last frame (an evicted device's is the idle time before the save); a removed
            // device's fresh record is as recent as the removal, so it replaces what was stored.
            var observed = state.Removed ? savedAt : savedAt - TimeSpan.FromTicks(Math.Max(0, _time.GetElapsedTime(state.LastSeen, now).Ticks));
            records[i] = new DriftStateRecord(state.Id, _scorer.Profile.Hash, savedAt, buffer.ToArray(), observed);
        }

        var began = Stopwatch.GetTimestamp();
        try
        {
            store.Save(records);
        }
        catch (Exception ex)
        {
            for (var i = 0; i < batch.Count; i++)
            {
                batch[i].Changed(urgent[i]);
            }

            Volatile.Write(ref _stateSaveError, ex);
            _metrics.StateSaveFailed();
            Log.StoreSaveFailed(_logger, ex, _options.MonitorName, batch.Count, ex.Message);
            return false;
        }

        var elapsed = Stopwatch.GetElapsedTime(began);
        lock (_gate)
        {
            foreach (var state in batch)
            {
                state.LastSaved = now;
                if (_unsaved.TryGetValue(state.Id, out var left) && left == state)
                {
                    _unsaved.Remove(state.Id);
                }
            }
        }

        Volatile.Write(ref _stateSaveError, null);
        _metrics.StateSaved(elapsed);
        Log.StoreSaved(_logger, _options.MonitorName, batch.Count, elapsed);
        return true;
    }
}
