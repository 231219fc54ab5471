using System.Buffers.Binary;
using System.IO.Hashing;
using System.Text;

namespace Har.Drift;

/// <summary>
/// The journal beside the drift state file (<c>{StatePath}.journal</c>): between whole saves, the devices whose alarm
/// changed and the devices removed, appended and fsynced at the end of their tick; applied after the file at restore.
/// </summary>
public sealed partial class DeviceDriftMonitor
{
    /// <summary>The first bytes of the journal beside a state file (<c>{StatePath}.journal</c>).</summary>
    internal static ReadOnlySpan<byte> JournalMagic => "HARDJRNL"u8;

    /// <summary>The version of the journal format this build writes and reads.</summary>
    internal const int JournalFormatVersion = 1;

    /// <summary>The journal of the state file at <paramref name="statePath"/>: the devices whose alarm changed since it was written.</summary>
    internal static string JournalPath(string statePath) => statePath + ".journal";

    /// <summary>The journal's length past which the next save rewrites the whole file instead (and starts a new journal).</summary>
    private const long MaxJournalBytes = 64 << 20;

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
        var hash = XxHash3.HashToUInt64(entry.GetBuffer().AsSpan(0, (int)entry.Length));
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
                var writtenAt = BinaryPrimitives.ReadInt64LittleEndian(head.AsSpan(1));
                var length = BinaryPrimitives.ReadInt32LittleEndian(head.AsSpan(9));
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
                if ((ulong)BinaryPrimitives.ReadInt64LittleEndian(hash) != XxHash3.HashToUInt64(entry.GetBuffer().AsSpan(0, (int)entry.Length)))
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
}
