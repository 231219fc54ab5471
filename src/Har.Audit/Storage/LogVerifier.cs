using System.Buffers.Binary;
using System.Text;
using Har.Audit.Merkle;

namespace Har.Audit.Storage;

/// <summary>Read-only verification of a whole log directory; reports the first bad entry index and why.</summary>
internal static class LogVerifier
{
    private const int MaxFramePayload = (64 << 20) + 4096;

    /// <summary>
    /// Verifies a log that no one may be writing (<paramref name="segmentLimit"/> null: to the end of the segment) or
    /// the acknowledged prefix of a log open in this process. When another process holds the log open, only the
    /// consistent prefix that its query index describes is verified (the writer appends index rows after the frames
    /// and Merkle nodes are written), retrying a few times if the writer moved under the reader.
    /// </summary>
    public static AuditVerificationResult Verify(string directory, long? segmentLimit, AuditVerifierKey? pinnedKey)
    {
        if (segmentLimit is not null || !AuditLog.IsLive(directory))
        {
            return VerifyPrefix(directory, segmentLimit, pinnedKey, live: false);
        }

        AuditVerificationResult result = null!;
        for (var attempt = 0; attempt < 5; attempt++)
        {
            result = VerifyPrefix(directory, null, pinnedKey, live: true);
            if (result.IsValid || result.Problem == AuditVerificationProblem.Quarantined)
            {
                return result;
            }
        }

        return result;
    }

    /// <summary>The end of the last frame the query index describes: everything before it is complete on disk.</summary>
    private static long LiveLimit(string directory)
    {
        var indexPath = Path.Combine(directory, AuditLog.IndexFile);
        using var index = new FileStream(indexPath, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete);
        var rows = index.Length / IndexRow.Size;
        if (rows == 0)
        {
            return LogEnvelope.HeaderSize;
        }

        Span<byte> row = stackalloc byte[IndexRow.Size];
        index.Position = (rows - 1) * IndexRow.Size;
        index.ReadExactly(row);
        var last = IndexRow.Read(row);
        return last.Offset + last.FrameLength;
    }

    private static AuditVerificationResult VerifyPrefix(string directory, long? segmentLimit, AuditVerifierKey? pinnedKey, bool live)
    {
        var segmentPath = Path.Combine(directory, AuditLog.SegmentFile);
        if (!File.Exists(segmentPath))
        {
            throw new FileNotFoundException($"'{directory}' holds no audit log ({AuditLog.SegmentFile} is missing).", segmentPath);
        }

        SignedCheckpoint? checkpoint = null;
        string? checkpointProblem = null;
        try
        {
            checkpoint = AuditLog.ReadCheckpoint(directory);
        }
        catch (FormatException ex)
        {
            checkpointProblem = ex.Message;
        }

        using var segment = new FileStream(segmentPath, FileMode.Open, FileAccess.Read, FileShare.ReadWrite, 1 << 20, FileOptions.SequentialScan);
        // Live: the limit is taken after the checkpoint was read, so the checkpoint never exceeds the indexed prefix.
        var length = Math.Min(live ? LiveLimit(directory) : segmentLimit ?? long.MaxValue, segment.Length);
        var levels = new LevelReaders(Path.Combine(directory, AuditLog.TreeDirectory));
        using var _ = levels;
        var indexPath = Path.Combine(directory, AuditLog.IndexFile);
        using var index = File.Exists(indexPath) ? new FileStream(indexPath, FileMode.Open, FileAccess.Read, FileShare.ReadWrite, 1 << 16, FileOptions.SequentialScan) : null;

        // A log no one writes, as a crash left it: its derived files (Merkle nodes, query index) are authoritative only up
        // to the last recovery seal; past it, an open rebuilds them from the entries, so there they may be short or stale
        // without anything being wrong, and a torn last frame past every checkpoint and seal is a write the crash cut
        // (never acknowledged; an open moves it to torn/). Found from outside: verifying a crashed, not yet reopened log
        // said FAILED (a stored Merkle node missing) 6 times in 10 under load. Entries and the tree computed from them are
        // checked in full either way.
        var crashed = !live && segmentLimit is null;
        var derivedTrustedBelow = crashed ? SealedSize(directory) : long.MaxValue;
        var anchoredBelow = Math.Max(derivedTrustedBelow, checkpoint?.TreeSize ?? 0);
        long derivedRebuilt = 0;
        long tornBytes = 0;
        var border = new byte[64][];
        var lastLeaf = new byte[32];
        byte[]? rootAtCheckpoint = checkpoint is { TreeSize: 0 } ? MerkleHasher.EmptyRoot : null;
        long n = 0;

        AuditVerificationResult Fail(AuditVerificationProblem problem, long? at, string message) => new()
        {
            Problem = problem,
            FirstBadIndex = at,
            Message = message,
            EntriesVerified = at ?? n,
            Checkpoint = checkpoint,
        };

        var header = new byte[LogEnvelope.HeaderSize];
        if (length < LogEnvelope.HeaderSize || segment.Read(header) != header.Length || !header.AsSpan().SequenceEqual(LogEnvelope.Magic))
        {
            return Fail(AuditVerificationProblem.Header, 0, "the segment header is not HARLOG01");
        }

        long offset = LogEnvelope.HeaderSize;
        var frameHeader = new byte[LogEnvelope.FrameOverhead];
        var payload = new byte[4096];
        var row = new byte[IndexRow.Size];
        var stored = new byte[32];
        bool TornTail(long at) =>
            crashed && n >= anchoredBelow && LogEnvelope.CountValidFrames(segment.SafeFileHandle, at + 1, length).Count == 0;

        while (offset < length)
        {
            var remaining = length - offset;
            if (remaining < LogEnvelope.FrameOverhead)
            {
                if (TornTail(offset))
                {
                    tornBytes = remaining;
                    break;
                }

                return Fail(AuditVerificationProblem.Framing, n, $"entry {n}: {remaining} trailing bytes are not a frame header");
            }

            segment.ReadExactly(frameHeader);
            var len = BinaryPrimitives.ReadUInt32LittleEndian(frameHeader);
            if (len == 0 || len > MaxFramePayload || len > remaining - LogEnvelope.FrameOverhead)
            {
                if (TornTail(offset))
                {
                    tornBytes = remaining;
                    break;
                }

                return Fail(AuditVerificationProblem.Framing, n, $"entry {n}: frame length {len} at offset {offset} is impossible ({remaining - LogEnvelope.FrameOverhead} bytes follow)");
            }

            if (payload.Length < len)
            {
                payload = new byte[Math.Max(len, payload.Length * 2)];
            }

            var span = payload.AsSpan(0, (int)len);
            segment.ReadExactly(span);
            if (BinaryPrimitives.ReadUInt32LittleEndian(frameHeader.AsSpan(4)) != LogEnvelope.FrameCrc(frameHeader.AsSpan(0, 4), span))
            {
                if (TornTail(offset))
                {
                    tornBytes = remaining;
                    break;
                }

                return Fail(AuditVerificationProblem.Checksum, n, $"entry {n}: CRC-32C mismatch in the frame at offset {offset}");
            }

            var entry = LogEnvelope.TryParse(span, out var problem);
            if (entry is null)
            {
                return Fail(AuditVerificationProblem.Entry, n, $"entry {n}: {problem}");
            }

            if (entry.Index != n)
            {
                return Fail(AuditVerificationProblem.Index, n, $"entry {n}: carries index {entry.Index}");
            }

            if (!entry.PreviousHash.AsSpan().SequenceEqual(lastLeaf))
            {
                return Fail(AuditVerificationProblem.Chain, n, $"entry {n}: prev is not the leaf hash of entry {n - 1}");
            }

            MerkleHasher.Leaf(span, lastLeaf);

            // Stored Merkle nodes: every node this leaf completes, compared with the level files.
            var node = (byte[])lastLeaf.Clone();
            var idx = n;
            var derivedOk = true;
            for (var level = 0; ; level++)
            {
                if (!levels.Next(level, stored))
                {
                    if (n < derivedTrustedBelow)
                    {
                        return Fail(AuditVerificationProblem.StoredTree, idx << level, $"entry {idx << level}: the stored Merkle node (level {level}, index {idx}) is missing");
                    }

                    derivedOk = false;
                }
                else if (!stored.AsSpan().SequenceEqual(node))
                {
                    if (n < derivedTrustedBelow)
                    {
                        return Fail(AuditVerificationProblem.StoredTree, idx << level, $"entry {idx << level}: the stored Merkle node (level {level}, index {idx}) differs from the one computed from the entries");
                    }

                    derivedOk = false;
                }

                if ((idx & 1) == 0)
                {
                    border[level] = node;
                    break;
                }

                node = MerkleHasher.Node(border[level], node);
                idx >>= 1;
            }

            // Query index row.
            if (index is null || index.Read(row) != IndexRow.Size)
            {
                if (n < derivedTrustedBelow)
                {
                    return Fail(AuditVerificationProblem.QueryIndex, n, $"entry {n}: its query index row is missing");
                }

                derivedOk = false;
            }
            else if (IndexRow.Read(row) != IndexRow.For(offset, (int)len + LogEnvelope.FrameOverhead, entry.Record))
            {
                if (n < derivedTrustedBelow)
                {
                    return Fail(AuditVerificationProblem.QueryIndex, n, $"entry {n}: its query index row does not match the entry");
                }

                derivedOk = false;
            }

            if (!derivedOk)
            {
                derivedRebuilt++;
            }

            n++;
            offset += LogEnvelope.FrameOverhead + len;
            if (checkpoint is not null && n == checkpoint.TreeSize)
            {
                rootAtCheckpoint = Root(border, n);
            }
        }

        var root = n == 0 ? MerkleHasher.EmptyRoot : Root(border, n);
        var liveNote = live ? $" (live: another process is writing the log; verified its consistent prefix of {Messages.Entries(n)})" : string.Empty;
        if (derivedRebuilt > 0)
        {
            liveNote += $" (not reopened since a crash: {Messages.Entries(derivedRebuilt)} after the last recovery seal {(derivedRebuilt == 1 ? "has" : "have")} no stored Merkle nodes or index rows yet, or partial ones; they were verified from the entries, and the next open rebuilds their derived files)";
        }

        if (tornBytes > 0)
        {
            liveNote += $" (not reopened since a crash: the last {Messages.Bytes(tornBytes)} of the segment {(tornBytes == 1 ? "is" : "are")} a torn write after entry {n - 1}, never acknowledged, past every checkpoint and seal; the next open moves them to torn/)";
        }
        var quarantine = QuarantineSummary.Read(directory);
        AuditVerificationResult Done(AuditVerificationResult ok) => quarantine.Repairs == 0 ? ok : new AuditVerificationResult
        {
            Problem = AuditVerificationProblem.Quarantined,
            EntriesVerified = ok.EntriesVerified,
            RootHash = ok.RootHash,
            Checkpoint = ok.Checkpoint,
            VerifierKey = ok.VerifierKey,
            VerifierKeyPinned = ok.VerifierKeyPinned,
            Message = $"{(n == 1 ? "the 1 entry present verifies" : $"the {n} entries present verify")}, but {Messages.Count(quarantine.Repairs, "repair", "repairs")} removed at least {Messages.Entries(quarantine.EntriesRemoved)} (quarantine/{quarantine.Latest}); the log is incomplete{liveNote}",
        };
        var ok = new AuditVerificationResult { EntriesVerified = n, RootHash = root, Message = $"{Messages.Entries(n)} verified (framing, CRC-32C, indexes, chain, schemas, stored tree, query index); no signed checkpoint{liveNote}" };
        if (checkpointProblem is not null)
        {
            return Fail(AuditVerificationProblem.CheckpointSignature, null, $"the checkpoint file is malformed: {checkpointProblem}");
        }

        if (checkpoint is null)
        {
            return Done(ok);
        }

        string? metaOrigin;
        try
        {
            metaOrigin = ReadOrigin(directory);
        }
        catch (InvalidDataException ex)
        {
            return Fail(AuditVerificationProblem.CheckpointOrigin, null, ex.Message);
        }

        if (!string.Equals(metaOrigin, checkpoint.Origin, StringComparison.Ordinal))
        {
            return Fail(AuditVerificationProblem.CheckpointOrigin, null, metaOrigin is null
                ? $"the checkpoint names origin '{checkpoint.Origin}' but the log's {AuditLog.MetaFile} is missing or names none"
                : $"the checkpoint names origin '{checkpoint.Origin}' but the log is '{metaOrigin}'");
        }

        if (checkpoint.TreeSize > n)
        {
            return Fail(AuditVerificationProblem.CheckpointSize, n, $"the signed checkpoint commits to {Messages.Entries(checkpoint.TreeSize)} but the log holds {n}: {Messages.Missing(n, checkpoint.TreeSize)}");
        }

        if (!rootAtCheckpoint!.AsSpan().SequenceEqual(checkpoint.RootHash.Span))
        {
            return Fail(AuditVerificationProblem.CheckpointRoot, null, $"the Merkle root of the first {Messages.Entries(checkpoint.TreeSize)} differs from the signed root");
        }

        var key = pinnedKey;
        var vkeyPath = Path.Combine(directory, AuditLog.VerifierKeyFile);
        if (key is null && File.Exists(vkeyPath))
        {
            try
            {
                key = AuditVerifierKey.Parse(File.ReadAllText(vkeyPath, Encoding.UTF8));
            }
            catch (FormatException ex)
            {
                return Fail(AuditVerificationProblem.CheckpointSignature, null, $"the stored verifier key is malformed: {ex.Message}");
            }
        }

        if (key is null || !checkpoint.Verify(key))
        {
            return Fail(AuditVerificationProblem.CheckpointSignature, null, key is null
                ? "the checkpoint cannot be checked: no verifier key was given and none is stored"
                : $"the checkpoint carries no valid signature by {key}");
        }

        return Done(new AuditVerificationResult
        {
            EntriesVerified = n,
            RootHash = root,
            Checkpoint = checkpoint,
            VerifierKey = key.ToString(),
            VerifierKeyPinned = pinnedKey is not null,
            Message = $"{Messages.Entries(n)} verified; the root at size {checkpoint.TreeSize} matches the checkpoint signed by {key.Name}+{key.KeyId:x8}"
                + (pinnedKey is null ? " (key taken from the log directory, which proves less: pass the trusted verifier key, the verifierKey argument or AuditLogOptions.VerifierKey, to prove more)" : string.Empty) + liveNote,
        });
    }

    /// <summary>The entries the recovery seal (<c>state.json</c>) covers, whose derived files were fsynced before it; 0 without a readable seal.</summary>
    private static long SealedSize(string directory)
    {
        try
        {
            using var doc = System.Text.Json.JsonDocument.Parse(File.ReadAllBytes(Path.Combine(directory, AuditLog.StateFile)));
            return doc.RootElement.TryGetProperty("size", out var size) && size.TryGetInt64(out var value) && value > 0 ? value : 0;
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException or System.Text.Json.JsonException or InvalidOperationException)
        {
            return 0;
        }
    }

    private static byte[] Root(byte[][] border, long n)
    {
        byte[]? root = null;
        for (var level = 0; level < 64; level++)
        {
            if (((n >> level) & 1) == 1)
            {
                root = root is null ? border[level] : MerkleHasher.Node(border[level], root);
            }
        }

        return root!;
    }

    private static string? ReadOrigin(string directory)
    {
        var path = Path.Combine(directory, AuditLog.MetaFile);
        if (!File.Exists(path))
        {
            return null;
        }

        return AuditLog.ReadMetaOrigin(path);
    }

    /// <summary>Sequential readers over the level files, one per level.</summary>
    private sealed class LevelReaders(string directory) : IDisposable
    {
        private readonly FileStream?[] _streams = new FileStream?[64];
        private readonly bool[] _missing = new bool[64];

        public bool Next(int level, Span<byte> destination)
        {
            if (_missing[level])
            {
                return false;
            }

            var s = _streams[level];
            if (s is null)
            {
                var path = Path.Combine(directory, $"level-{level:D2}.hashes");
                if (!File.Exists(path))
                {
                    _missing[level] = true;
                    return false;
                }

                s = _streams[level] = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite, 1 << 16, FileOptions.SequentialScan);
            }

            return s.ReadAtLeast(destination[..32], 32, throwOnEndOfStream: false) == 32;
        }

        public void Dispose()
        {
            foreach (var s in _streams)
            {
                s?.Dispose();
            }
        }
    }
}
