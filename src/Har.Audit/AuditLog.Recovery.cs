using System.Buffers.Binary;
using System.Globalization;
using System.Text.Json;
using Har.Audit.Merkle;
using Har.Audit.Storage;

namespace Har.Audit;

public sealed partial class AuditLog
{
    private AuditRecoveryReport Recover(RepairRequest? repair)
    {
        var (sealedSize, sealedBytes, segmentLength, sealProblem) = ReadSeal();
        var rebuilt = false;

        // Entries that were certainly acknowledged: a checkpoint signed them, or a seal recorded them.
        var anchored = CheckpointSizeOrZero();
        if (sealProblem is not null)
        {
            if (File.Exists(Path.Combine(Directory, StateFile)))
            {
                Log.SealMismatch(_logger, Directory, sealProblem.Text);
            }

            anchored = Math.Max(anchored, sealProblem.AcknowledgedEntries);
            rebuilt = sealProblem.Text != "no seal";
            sealedSize = 0;
            sealedBytes = LogEnvelope.HeaderSize;
        }
        else if (repair is not null && sealedSize > 0)
        {
            // A repair re-reads every entry: an open trusts the sealed ones (checked by the seal's root over the stored
            // nodes, not by their bytes), so a bit flip inside them was "nothing to repair" while verify failed on it.
            anchored = Math.Max(anchored, sealedSize);
            rebuilt = true;
            sealedSize = 0;
            sealedBytes = LogEnvelope.HeaderSize;
        }

        _nodes.Reset(sealedSize);
        _index.Reset(sealedSize);
        if (sealedSize > 0)
        {
            _nodes.ReadNode(0, sealedSize - 1, _lastLeaf);
        }

        _size = sealedSize;
        _sealedSize = sealedSize;
        var (offset, reason) = ScanEntries(sealedBytes, segmentLength);
        _nodes.WritePending();
        _index.WritePending();
        if (_readOnly)
        {
            return ReadOnlyReport(sealedSize, offset, segmentLength, reason, anchored, rebuilt);
        }

        var removed = segmentLength - offset;
        string? copy = null;
        var tornTail = false;
        if (reason is not null || _size < anchored)
        {
            var (validAfter, firstValidAfter) = reason is null ? (0L, -1L) : LogEnvelope.CountValidFrames(_segment, offset + 1, segmentLength);
            tornTail = reason is not null && validAfter == 0 && _size >= anchored;
            if (tornTail)
            {
                copy = CopyOut(TornDirectory, string.Create(CultureInfo.InvariantCulture, $"tail-{offset}"), offset, segmentLength);
                Log.TornTail(_logger, Directory, removed, offset, reason!, copy);
            }
            else
            {
                var problem = reason is null
                    ? string.Create(CultureInfo.InvariantCulture, $"the segment ends after {Messages.Entries(_size)} but {anchored} {(anchored == 1 ? "was" : "were")} acknowledged (signed checkpoint or recovery seal)")
                    : reason + (validAfter > 0
                        ? string.Create(CultureInfo.InvariantCulture, $"; {Messages.Count(validAfter, "valid entry follows", "valid entries follow")} it (the first at offset {firstValidAfter}), so it is not a torn write")
                        : string.Create(CultureInfo.InvariantCulture, $"; the latest signed checkpoint or seal covers {Messages.Entries(anchored)}, so it was acknowledged"));
                if (repair is null)
                {
                    throw new AuditLogCorruptedException(
                        string.Create(CultureInfo.InvariantCulture, $"The audit log at '{Directory}' is damaged at entry {_size} (segment offset {offset}): {problem}. ")
                        + "Acknowledged entries are never dropped automatically. Restore the folder from a backup, or remove the damaged entries deliberately "
                        + "with AuditLog.Repair(options, actor, reason) (the har CLI: `har audit repair`), which moves them to quarantine/ and records the removal as an audit event.",
                        _size,
                        offset);
                }

                copy = QuarantineForRepair(repair, offset, segmentLength, problem, Math.Max(validAfter + (reason is null ? 0 : 1), anchored - _size));
            }

            RandomAccess.SetLength(_segment, offset);
            RandomAccess.FlushToDisk(_segment);
        }

        _segmentLength = offset;
        var scanned = _size - sealedSize;
        if (scanned > 0 || copy is not null || rebuilt)
        {
            Seal(_size, _segmentLength);
        }

        Log.Opened(_logger, Directory, _size, sealedSize, scanned);
        return new AuditRecoveryReport
        {
            SealedEntries = sealedSize,
            ScannedEntries = scanned,
            Entries = _size,
            TailTruncated = copy is not null,
            TruncatedAtOffset = copy is null ? null : offset,
            TruncatedBytes = copy is null ? 0 : removed,
            Reason = copy is null ? null : (tornTail ? "torn tail (never acknowledged): " : "REPAIRED: ") + (reason ?? "entries missing"),
            QuarantinePath = copy,
            RebuiltFromStart = rebuilt,
        };
    }

    /// <summary>
    /// Reads the frames in [<paramref name="offset"/>, <paramref name="end"/>) of the segment, checking framing, CRC-32C,
    /// index and chain, and appends each good entry to the derived state (<see cref="_size"/>, leaf, nodes, index row;
    /// the caller writes the last staged ones); returns where and why it stopped (reason <see langword="null"/> at the end).
    /// </summary>
    private (long Offset, string? Reason) ScanEntries(long offset, long end)
    {
        using var stream = new FileStream(Path.Combine(Directory, SegmentFile), FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete, 1 << 20, FileOptions.SequentialScan);
        stream.Position = offset;
        var header = new byte[LogEnvelope.FrameOverhead];
        var payload = new byte[4096];
        while (offset < end)
        {
            var remaining = end - offset;
            if (remaining < LogEnvelope.FrameOverhead)
            {
                return (offset, $"incomplete frame header ({Messages.Bytes(remaining)}) at the end");
            }

            if (stream.ReadAtLeast(header, header.Length, throwOnEndOfStream: false) != header.Length)
            {
                return (offset, "the segment became shorter while it was read");
            }

            var length = BinaryPrimitives.ReadUInt32LittleEndian(header);
            if (length == 0 || length > MaxFramePayload || length > remaining - LogEnvelope.FrameOverhead)
            {
                return (offset, length > remaining - LogEnvelope.FrameOverhead
                    ? $"frame length {length} runs past the end of the segment ({Messages.Bytes(remaining - LogEnvelope.FrameOverhead)} left)"
                    : $"impossible frame length {length}");
            }

            if (payload.Length < length)
            {
                payload = new byte[Math.Max(length, payload.Length * 2)];
            }

            var span = payload.AsSpan(0, (int)length);
            if (stream.ReadAtLeast(span, span.Length, throwOnEndOfStream: false) != span.Length)
            {
                return (offset, "the segment became shorter while it was read");
            }

            if (BinaryPrimitives.ReadUInt32LittleEndian(header.AsSpan(4)) != LogEnvelope.FrameCrc(header.AsSpan(0, 4), span))
            {
                return (offset, "CRC-32C mismatch");
            }

            var entry = LogEnvelope.TryParse(span, out var problem);
            if (entry is null)
            {
                return (offset, problem);
            }

            if (entry.Index != _size)
            {
                return (offset, $"entry says index {entry.Index}, expected {_size}");
            }

            if (!entry.PreviousHash.AsSpan().SequenceEqual(_lastLeaf))
            {
                return (offset, "chain link broken (prev is not the previous entry's leaf hash)");
            }

            MerkleHasher.Leaf(span, _lastLeaf);
            _nodes.Append(_lastLeaf);
            _index.Append(IndexRow.For(offset, (int)length + LogEnvelope.FrameOverhead, entry.Record));
            _size++;
            offset += LogEnvelope.FrameOverhead + length;
            if ((_size & 4095) == 0)
            {
                _nodes.WritePending();
                _index.WritePending();
            }
        }

        return (offset, null);
    }

    private long CheckpointSizeOrZero()
    {
        try
        {
            return LatestCheckpoint?.TreeSize ?? 0;
        }
        catch (FormatException)
        {
            return 0; // a malformed checkpoint is reported by verify; it anchors nothing here
        }
    }

    /// <summary>Keeps the removed bytes and a manifest in <c>quarantine/</c>, and archives a checkpoint the shortened log no longer matches.</summary>
    private string QuarantineForRepair(RepairRequest repair, long offset, long segmentLength, string problem, long entriesRemoved)
    {
        var stamp = _time.GetUtcNow();
        var name = string.Create(CultureInfo.InvariantCulture, $"repair-{_size}-{stamp.UtcDateTime:yyyyMMdd'T'HHmmssfff'Z'}");
        var data = CopyOut(QuarantineDirectory, name, offset, segmentLength);
        string? archived = null;
        long? checkpointSize = null;
        if (CheckpointSizeOrZero() is var size && size > 0)
        {
            checkpointSize = size;
            var matches = size <= _size && MerkleProofBuilder.RootHash(_nodes, size).AsSpan().SequenceEqual(ReadCheckpoint(Directory)!.RootHash.Span);
            if (!matches)
            {
                archived = Path.Combine(Directory, QuarantineDirectory, name + ".checkpoint");
                File.Move(Path.Combine(Directory, CheckpointFile), archived);
            }
        }

        repair.Removed = new RepairOutcome(_size, offset, segmentLength - offset, entriesRemoved, problem, Path.GetFileName(data), AuditHash.Sha256OfFile(data), checkpointSize, archived is null ? null : Path.GetFileName(archived));
        var manifest = JsonSerializer.SerializeToUtf8Bytes(repair.Removed.ToJson(repair, RecordText.FormatTimestamp(stamp)), ProofJson.Options);
        DurableFile.WriteAtomic(Path.Combine(Directory, QuarantineDirectory, name + ".json"), manifest);
        Log.Repaired(_logger, Directory, repair.Actor, repair.Reason, segmentLength - offset, _size, offset, data);
        _metrics.Quarantine(QuarantineSummary.Read(Directory));
        return data;
    }

    /// <summary>After a repair opened the log: records the removal as an audit event and returns the report with its index.</summary>
    private AuditRecoveryReport FinishRepair(RepairRequest repair)
    {
        if (repair.Removed is not { } removed)
        {
            return Recovery;
        }

        var details = JsonSerializer.SerializeToElement(removed.ToJson(repair, null));
        var ack = AppendAsync(new AuditEvent
        {
            EventType = "audit.log.repaired",
            EntityType = "audit-log",
            EntityId = Origin,
            Severity = AuditSeverity.Critical,
            ActionDetails = details,
            Actor = repair.Actor,
            Timestamp = _time.GetUtcNow(),
        }).GetAwaiter().GetResult();
        var r = Recovery;
        return new AuditRecoveryReport
        {
            SealedEntries = r.SealedEntries,
            ScannedEntries = r.ScannedEntries,
            Entries = r.Entries,
            TailTruncated = r.TailTruncated,
            TruncatedAtOffset = r.TruncatedAtOffset,
            TruncatedBytes = r.TruncatedBytes,
            Reason = r.Reason,
            QuarantinePath = r.QuarantinePath,
            RebuiltFromStart = r.RebuiltFromStart,
            RepairEventIndex = ack.Index,
        };
    }

    /// <summary>
    /// Reads the recovery seal, then the segment's length: a writer in another process seals only entries it has written
    /// and fsynced, so the length read after its seal covers them.
    /// </summary>
    private (long Size, long Bytes, long SegmentLength, SealProblem? Problem) ReadSeal()
    {
        byte[]? seal;
        try
        {
            seal = File.ReadAllBytes(Path.Combine(Directory, StateFile));
        }
        catch (FileNotFoundException)
        {
            seal = null;
        }

        var segmentLength = RandomAccess.GetLength(_segment);
        if (seal is null)
        {
            return (0, LogEnvelope.HeaderSize, segmentLength, new SealProblem("no seal", 0));
        }

        long size, bytes;
        byte[] root;
        try
        {
            using var doc = JsonDocument.Parse(seal);
            size = doc.RootElement.GetProperty("size").GetInt64();
            bytes = doc.RootElement.GetProperty("segment_bytes").GetInt64();
            root = Convert.FromHexString(doc.RootElement.GetProperty("root").GetString()!);
        }
        catch (Exception ex) when (ex is JsonException or KeyNotFoundException or FormatException or InvalidOperationException)
        {
            return (0, 0, segmentLength, new SealProblem($"unreadable {StateFile}: {ex.Message}", 0));
        }

        if (bytes > segmentLength)
        {
            // Truncated outside the log: re-scan everything; the scan then stops short of the sealed entries.
            return (0, 0, segmentLength, new SealProblem($"the segment has {segmentLength} bytes but its seal records {bytes} bytes of acknowledged entries (truncated outside the log)", size));
        }

        if (size < 0 || bytes < LogEnvelope.HeaderSize || !_nodes.Covers(size) || _index.FileRows < size)
        {
            return (0, 0, segmentLength, new SealProblem($"the Merkle node or index files hold fewer than the {size} sealed entries", 0));
        }

        _nodes.Reset(size);
        if (!MerkleProofBuilder.RootHash(_nodes, size).AsSpan().SequenceEqual(root))
        {
            return (0, 0, segmentLength, new SealProblem($"the stored Merkle nodes do not produce the sealed root at size {size}", 0));
        }

        return (size, bytes, segmentLength, null);
    }

    private string CopyOut(string subdirectory, string name, long from, long to)
    {
        var dir = Path.Combine(Directory, subdirectory);
        System.IO.Directory.CreateDirectory(dir);
        var path = Path.Combine(dir, string.Create(CultureInfo.InvariantCulture, $"{name}-{_time.GetUtcNow().UtcDateTime:yyyyMMdd'T'HHmmssfff'Z'}.bin"));
        var buffer = new byte[(int)Math.Min(Math.Max(to - from, 1), 1 << 20)];
        using (var output = File.OpenHandle(path, FileMode.Create, FileAccess.Write))
        {
            for (var pos = from; pos < to;)
            {
                var n = RandomAccess.Read(_segment, buffer.AsSpan(0, (int)Math.Min(buffer.Length, to - pos)), pos);
                if (n == 0)
                {
                    break;
                }

                RandomAccess.Write(output, buffer.AsSpan(0, n), pos - from);
                pos += n;
            }

            RandomAccess.FlushToDisk(output);
        }

        DurableFile.FsyncDirectory(dir);
        DurableFile.FsyncDirectory(Directory);
        return path;
    }

    /// <summary>fsyncs the derived files up to <paramref name="size"/> entries and records a recovery seal (temp file + rename + directory fsync).</summary>
    private void Seal(long size, long segmentBytes)
    {
        _sealGate.Wait();
        try
        {
            if (size < Volatile.Read(ref _sealedSize))
            {
                return;
            }

            _nodes.Flush(size);
            _index.Flush();
            var root = MerkleProofBuilder.RootHash(_nodes, size);
            var json = JsonSerializer.SerializeToUtf8Bytes(new SortedDictionary<string, object>(StringComparer.Ordinal)
            {
                ["root"] = Convert.ToHexStringLower(root),
                ["segment_bytes"] = segmentBytes,
                ["size"] = size,
            });
            DurableFile.WriteAtomic(Path.Combine(Directory, StateFile), json);
            Volatile.Write(ref _sealedSize, size);
        }
        finally
        {
            _sealGate.Release();
        }
    }

    private sealed record SealProblem(string Text, long AcknowledgedEntries);
}
