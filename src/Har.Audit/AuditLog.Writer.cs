using System.Buffers;
using Har.Audit.Merkle;
using Har.Audit.Storage;

namespace Har.Audit;

public sealed partial class AuditLog
{
    /// <summary>
    /// Appends a record. The record is validated against its schema and serialised canonically on the
    /// caller's thread; the returned task completes after the entry is written and fsynced, together
    /// with every other append that arrived meanwhile (group commit).
    /// </summary>
    /// <param name="record">The record.</param>
    /// <param name="cancellationToken">Checked before the record is queued; a queued append is not abandoned.</param>
    /// <returns>The entry's index and leaf hash.</returns>
    /// <exception cref="AuditRecordException">The record does not match its schema.</exception>
    /// <exception cref="InvalidOperationException">The log was opened with <see cref="OpenReadOnly"/>.</exception>
    /// <exception cref="AuditLogUnavailableException">The log cannot write now (<see cref="State"/> is <see cref="AuditLogState.Unavailable"/>): thrown before the record is queued, or as the task's fault when this append's write or fsync failed (then it was not acknowledged).</exception>
    public Task<AuditAppendResult> AppendAsync(AuditRecord record, CancellationToken cancellationToken = default) => Append(record, once: false, cancellationToken);

    /// <summary>
    /// Appends a record unless the log already holds an entry with exactly the same canonical record (same type, fields,
    /// timestamp and actor): then nothing is appended and the result is that entry's, with
    /// <see cref="AuditAppendResult.AlreadyPresent"/> set. Like Trillian's deduplication of identical leaves, this makes a
    /// retried append idempotent: a writer that cannot know whether its earlier append committed (a crash, a lost
    /// connection, another process that took over its work) appends again with the same record, and the log holds it
    /// once. The check and the append are one step: in PostgreSQL they run in the transaction that holds the log's
    /// sequencer, so concurrent calls from any number of processes write one entry; in the file log (one writing
    /// process) these calls are serialised with each other.
    /// </summary>
    /// <param name="record">The record; give it a fixed <see cref="AuditRecord.Timestamp"/> (the time of the fact it records), so a retry is the same record.</param>
    /// <param name="cancellationToken">Checked before the record is queued; a queued append is not abandoned.</param>
    /// <returns>The entry's index and leaf hash, new or found.</returns>
    /// <remarks>
    /// The check reads the entries with the record's type, entity and timestamp: an index lookup in PostgreSQL, a scan of
    /// the file log's index (40 bytes per entry) in the file log. Use it for records that are retried, not for every record.
    /// </remarks>
    /// <exception cref="AuditRecordException">The record does not match its schema.</exception>
    /// <exception cref="InvalidOperationException">The log was opened with <see cref="OpenReadOnly"/>.</exception>
    /// <exception cref="AuditLogUnavailableException">The log cannot write now; see <see cref="AppendAsync"/>.</exception>
    public async Task<AuditAppendResult> AppendOnceAsync(AuditRecord record, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(record);
        if (_pg is not null)
        {
            return await Append(record, once: true, cancellationToken).ConfigureAwait(false);
        }

        ArgumentNullException.ThrowIfNull(record);
        ThrowIfReadOnly();
        var canonical = Canonicalize(record);
        await _onceGate.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            return FindIdentical(record, canonical) ?? await AppendAsync(record, cancellationToken).ConfigureAwait(false);
        }
        finally
        {
            _onceGate.Release();
        }
    }

    /// <summary>The validated canonical bytes of a record, size-checked (a copy: for the once-appends' comparison).</summary>
    private byte[] Canonicalize(AuditRecord record)
    {
        var buffer = new ArrayBufferWriter<byte>(1024);
        record.WriteValidated(buffer);
        if (buffer.WrittenCount > _options.MaxRecordBytes)
        {
            throw new ArgumentException($"The canonical record has {buffer.WrittenCount} bytes; the log accepts at most {_options.MaxRecordBytes} (AuditLogOptions.MaxRecordBytes).", nameof(record));
        }

        return buffer.WrittenSpan.ToArray();
    }

    /// <summary>The file log's acknowledged entry whose record is <paramref name="canonical"/>, byte for byte; null when there is none.</summary>
    private AuditAppendResult? FindIdentical(AuditRecord record, byte[] canonical)
    {
        var row = IndexRow.For(0, 0, record);
        var count = Count;
        var rows = ArrayPool<byte>.Shared.Rent(4096 * IndexRow.Size);
        try
        {
            return FindIdentical(row, canonical, count, rows);
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(rows);
        }
    }

    private AuditAppendResult? FindIdentical(IndexRow row, byte[] canonical, long count, byte[] rows)
    {
        for (long i = 0; i < count;)
        {
            var n = _index.ReadRows(i, rows.AsSpan(0, (int)Math.Min(4096, count - i) * IndexRow.Size));
            if (n == 0)
            {
                break;
            }

            for (var r = 0; r < n; r++, i++)
            {
                var candidate = IndexRow.Read(rows.AsSpan(r * IndexRow.Size, IndexRow.Size));
                if (candidate.Ticks != row.Ticks || candidate.Kind != row.Kind || candidate.EventType != row.EventType || candidate.EntityType != row.EntityType
                    || candidate.EntityId != row.EntityId || candidate.Actor != row.Actor)
                {
                    continue;
                }

                var entry = ReadEntry(i, candidate);
                if (LogEnvelope.RecordBytes(entry.Payload).SequenceEqual(canonical))
                {
                    return new AuditAppendResult(i, entry.LeafHash, alreadyPresent: true);
                }
            }
        }

        return null;
    }

    private Task<AuditAppendResult> Append(AuditRecord record, bool once, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(record);
        cancellationToken.ThrowIfCancellationRequested();

        // Canonicalised once, into this thread's scratch buffer, then copied into the shared queue.
        var buffer = t_scratch ??= new ArrayBufferWriter<byte>(1024);
        buffer.ResetWrittenCount();
        try
        {
            record.WriteValidated(buffer);
            if (buffer.WrittenCount > _options.MaxRecordBytes)
            {
                throw new ArgumentException($"The canonical record has {buffer.WrittenCount} bytes; the log accepts at most {_options.MaxRecordBytes} (AuditLogOptions.MaxRecordBytes).", nameof(record));
            }

            if (_pg is not null)
            {
                return _pg.Enqueue(buffer.WrittenSpan.ToArray(), record, once);
            }

            var row = IndexRow.For(0, 0, record);
            var completion = new TaskCompletionSource<AuditAppendResult>(TaskCreationOptions.RunContinuationsAsynchronously);
            lock (_gate)
            {
                ObjectDisposedException.ThrowIf(_stopping, this);
                if (_state != (int)AuditLogState.Writable)
                {
                    ThrowIfReadOnly();
                    throw UnavailableNow();
                }

                _queue.Add(buffer.WrittenSpan, row, completion);
                if (_queue.Count == 1)
                {
                    Monitor.Pulse(_gate);
                }
            }

            return completion.Task;
        }
        finally
        {
            if (buffer.Capacity > ScratchLimit)
            {
                t_scratch = null;
            }
        }
    }

    private AuditLogUnavailableException UnavailableNow() => new(
        $"The audit log at '{Directory}' cannot write now ({_fault?.Message ?? "unavailable"}); the append was refused before anything was queued. "
        + $"It retries every {_options.RetryInterval.TotalSeconds:0.#} s and accepts appends again once the folder is writable (free space, fix the mount or permissions).",
        _fault);

    private void WriterLoop()
    {
        var batch = new PendingQueue();
        while (true)
        {
            lock (_gate)
            {
                while (_queue.Count == 0 && !_stopping)
                {
                    Monitor.Wait(_gate);
                }

                if (_queue.Count == 0)
                {
                    return;
                }

                (_queue, batch) = (batch, _queue);
            }

            try
            {
                // One write + fsync per group of at most MaxGroupCommitRecords appends and about 8 MiB.
                var start = 0;
                while (start < batch.Count)
                {
                    var end = start;
                    long bytes = 0;
                    while (end < batch.Count && end - start < _options.MaxGroupCommitRecords && (end == start || bytes + batch.Items[end].RecordLength <= MaxGroupBytes))
                    {
                        bytes += batch.Items[end].RecordLength;
                        end++;
                    }

                    Commit(batch, start, end);
                    start = end;
                }
            }
            catch (Exception ex)
            {
                Fail(batch, ex);
                batch.Clear();
                if (!AwaitRecovery())
                {
                    return;
                }

                continue;
            }

            batch.Clear();
            MaybeSealInBackground();
        }
    }

    private void Commit(PendingQueue batch, int start, int end)
    {
        var items = batch.Items;
        long first;
        lock (_commitLock)
        {
            _group.ResetWrittenCount();
            first = _size;
            var index = first;
            for (var i = start; i < end; i++, index++)
            {
                ref var p = ref items[i];
                var frameOffset = _group.WrittenCount;
                var (payloadStart, payloadLength) = LogEnvelope.WriteFrame(_group, index, p.Row.Kind, _lastLeaf, batch.Record(i));

                // The leaf hash is the appender's result; it is hashed straight into the array returned.
                var leaf = new byte[MerkleHasher.HashSize];
                MerkleHasher.Leaf(_group.WrittenSpan.Slice(payloadStart, payloadLength), leaf);
                leaf.CopyTo(_lastLeaf, 0);
                p.LeafHash = leaf;
                p.Row = p.Row with { Offset = _segmentLength + frameOffset, FrameLength = payloadLength + LogEnvelope.FrameOverhead };
            }

            // Nothing below changes _size or _segmentLength until every write succeeded: a failure leaves the
            // acknowledged state intact, and RestoreAfterFault rolls the staged derived state back to it.
            RandomAccess.Write(_segment, _group.WrittenSpan, _segmentLength);
            var t0 = _time.GetTimestamp();
            RandomAccess.FlushToDisk(_segment);
            var fsync = _time.GetElapsedTime(t0).TotalSeconds;

            for (var i = start; i < end; i++)
            {
                _nodes.Append(items[i].LeafHash);
                _index.Append(items[i].Row);
            }

            _nodes.WritePending();
            _index.WritePending();
            _segmentLength += _group.WrittenCount;
            Volatile.Write(ref _size, index);
            _metrics.Committed(end - start, fsync, index, _segmentLength);
        }

        for (var i = start; i < end; i++)
        {
            ref var p = ref items[i];
            p.Completion.TrySetResult(new AuditAppendResult(first + (i - start), p.LeafHash));
        }
    }

    private void Fail(PendingQueue batch, Exception ex)
    {
        PendingQueue queued;
        lock (_gate)
        {
            _fault = ex;
            Volatile.Write(ref _state, (int)AuditLogState.Unavailable);
            queued = _queue;
            _queue = new PendingQueue();
            _retryDue = false;
            _retryTimer ??= _time.CreateTimer(
                static s =>
                {
                    var log = (AuditLog)s!;
                    lock (log._gate)
                    {
                        log._retryDue = true;
                        Monitor.PulseAll(log._gate);
                    }
                },
                this,
                _options.RetryInterval,
                _options.RetryInterval);
        }

        _metrics.Writable(false);
        Log.Unavailable(_logger, Directory, _options.RetryInterval.TotalSeconds, ex);
        var failure = new AuditLogUnavailableException($"The audit log at '{Directory}' failed to write or fsync ({ex.Message}); this append was not acknowledged. The log refuses appends until a probe write succeeds (every {_options.RetryInterval.TotalSeconds:0.#} s).", ex);
        foreach (var pending in (ReadOnlySpan<PendingQueue>)[batch, queued])
        {
            for (var i = 0; i < pending.Count; i++)
            {
                if (pending.Items[i].Completion.TrySetException(failure))
                {
                    _metrics.Failed(1);
                }
            }
        }

        queued.Clear();
    }

    /// <summary>Waits for retry ticks and tries to restore the log; false when the log is being disposed.</summary>
    private bool AwaitRecovery()
    {
        while (true)
        {
            lock (_gate)
            {
                while (!_retryDue && !_stopping)
                {
                    Monitor.Wait(_gate);
                }

                if (_stopping)
                {
                    return false;
                }

                _retryDue = false;
            }

            try
            {
                RestoreAfterFault();
            }
            catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
            {
                Log.StillUnavailable(_logger, Directory, ex.Message);
                lock (_gate)
                {
                    _fault = ex;
                }

                continue;
            }

            lock (_gate)
            {
                _retryTimer?.Dispose();
                _retryTimer = null;
                _fault = null;
                Volatile.Write(ref _state, (int)AuditLogState.Writable);
            }

            _metrics.Writable(true);
            Log.Writable(_logger, Directory);
            return true;
        }
    }

    /// <summary>
    /// Drops every byte past the acknowledged state (a failed group may have left part of its frames, Merkle
    /// nodes or index rows), re-reads the in-memory frontier from the files, and proves the folder takes a
    /// durable write again (a probe file written, fsynced and deleted).
    /// </summary>
    private void RestoreAfterFault()
    {
        lock (_commitLock)
        {
            _nodes.Reset(_size);
            _index.Reset(_size);
            if (_size > 0)
            {
                _nodes.ReadNode(0, _size - 1, _lastLeaf);
            }
            else
            {
                Array.Clear(_lastLeaf);
            }

            RandomAccess.SetLength(_segment, _segmentLength);
            RandomAccess.FlushToDisk(_segment);
            var probe = Path.Combine(Directory, ".probe");
            try
            {
                using (var handle = File.OpenHandle(probe, FileMode.Create, FileAccess.Write, FileShare.None))
                {
                    RandomAccess.Write(handle, new byte[ProbeBytes], 0);
                    RandomAccess.FlushToDisk(handle);
                }
            }
            finally
            {
                File.Delete(probe);
            }

            DurableFile.FsyncDirectory(Directory);
        }
    }

    private void MaybeSealInBackground()
    {
        var size = _size;
        if (size - Volatile.Read(ref _sealedSize) < Math.Max(1, _options.SealInterval) || Interlocked.CompareExchange(ref _sealing, 1, 0) != 0)
        {
            return;
        }

        var segment = _segmentLength;
        _sealTask = Task.Run(() =>
        {
            try
            {
                Seal(size, segment);
            }
            catch (IOException ex)
            {
                Log.SealFailed(_logger, Directory, ex);
            }
            finally
            {
                Volatile.Write(ref _sealing, 0);
            }
        });
    }

    /// <summary>One queued append; the record's canonical bytes are in the queue's shared buffer.</summary>
    private struct PendingAppend
    {
        public int RecordOffset;
        public int RecordLength;
        public IndexRow Row;
        public TaskCompletionSource<AuditAppendResult> Completion;
        public byte[] LeafHash;
    }

    /// <summary>Appends waiting for the writer: one array of entries and one byte buffer for all their records, reused from group to group (the writer swaps two queues).</summary>
    private sealed class PendingQueue
    {
        private readonly ArrayBufferWriter<byte> _bytes = new(256 << 10);

        public PendingAppend[] Items { get; private set; } = new PendingAppend[1024];

        public int Count { get; private set; }

        public ReadOnlySpan<byte> Record(int i) => _bytes.WrittenSpan.Slice(Items[i].RecordOffset, Items[i].RecordLength);

        public void Add(ReadOnlySpan<byte> record, IndexRow row, TaskCompletionSource<AuditAppendResult> completion)
        {
            if (Count == Items.Length)
            {
                var items = Items;
                Array.Resize(ref items, items.Length * 2);
                Items = items;
            }

            var offset = _bytes.WrittenCount;
            record.CopyTo(_bytes.GetSpan(record.Length));
            _bytes.Advance(record.Length);
            Items[Count++] = new PendingAppend { RecordOffset = offset, RecordLength = record.Length, Row = row, Completion = completion, LeafHash = [] };
        }

        public void Clear()
        {
            Items.AsSpan(0, Count).Clear();
            Count = 0;
            _bytes.ResetWrittenCount();
        }
    }
}
