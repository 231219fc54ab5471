using System.Text;
using Har.Audit.Merkle;
using Har.Audit.Storage;

namespace Har.Audit;

public sealed partial class AuditLog
{
    private volatile string? _signerProblem;

    /// <summary>Gets or sets why the checkpoint signer last failed to sign, or null after a success (reported by the health check).</summary>
    internal string? SignerProblem
    {
        get => _signerProblem;
        set => _signerProblem = value;
    }

    /// <summary>Gets why the log is unavailable, when it is.</summary>
    internal string UnavailableReason => _pg?.UnavailableReason ?? _fault?.Message ?? (_readOnly ? ReadOnlyRefusal : "no failure recorded");

    internal void CheckpointFailed() => _metrics.CheckpointFailed();

    /// <summary>
    /// Signs a checkpoint (origin, size, root) of every acknowledged entry, after checking that the log
    /// still matches the previous checkpoint and that every entry the new checkpoint adds verifies (frame,
    /// CRC-32C, index, chain, schema, stored leaf hash, query index row), seals the derived files, and writes the note to
    /// <c>checkpoint</c> (and the verifier key to <c>checkpoint.vkey</c>) atomically.
    /// </summary>
    /// <param name="key">The signing key, or <see langword="null"/> for the key file at <see cref="AuditLogOptions.SigningKeyPath"/>.</param>
    /// <returns>The signed checkpoint.</returns>
    /// <exception cref="InvalidDataException">The log no longer matches its previous checkpoint, or an entry it would sign fails verification (nothing is signed).</exception>
    /// <exception cref="InvalidOperationException">The log was opened with <see cref="OpenReadOnly"/>, or no key was given and no signing key path is configured.</exception>
    /// <exception cref="ObjectDisposedException">The log was disposed.</exception>
    public SignedCheckpoint CreateCheckpoint(AuditSigningKey? key = null)
    {
        ThrowIfDisposed();
        ThrowIfReadOnly();
        if (key is null)
        {
            if (string.IsNullOrEmpty(_options.SigningKeyPath))
            {
                throw new InvalidOperationException("No checkpoint signing key is configured: set AuditLogOptions.SigningKeyPath to a key file created with AuditSigningKey.Generate(...).Save(path) (or `har audit keygen`), or pass the key.");
            }

            using var configured = AuditSigningKey.Load(_options.SigningKeyPath);
            return CreateCheckpoint(configured);
        }

        if (_pg is not null)
        {
            return _pg.Reading(s => s.CreateCheckpoint(key));
        }

        // One signer at a time: two concurrent calls (the background signer and a proof request) could otherwise write
        // their notes in the other order, replacing a newer checkpoint with an older one. Found from outside: a proof of
        // the entry just appended intermittently failed with "not covered by the latest signed checkpoint".
        lock (_checkpointLock)
        {
            return CreateCheckpointLocked(key);
        }
    }

    private SignedCheckpoint CreateCheckpointLocked(AuditSigningKey key)
    {
        long size, segment;
        lock (_commitLock)
        {
            size = _size;
            segment = _segmentLength;
        }

        var previous = LatestCheckpoint;
        if (previous is not null)
        {
            if (previous.TreeSize > size)
            {
                throw new InvalidDataException($"The previous checkpoint commits to {Messages.Entries(previous.TreeSize)} but the log holds {size}: entries were lost. Run verify.");
            }

            if (!MerkleProofBuilder.RootHash(_nodes, previous.TreeSize).AsSpan().SequenceEqual(previous.RootHash.Span))
            {
                throw new InvalidDataException($"The log no longer matches its previous checkpoint at size {previous.TreeSize}: history was rewritten. Run verify.");
            }
        }

        VerifyRange(previous?.TreeSize ?? 0, size);
        var root = MerkleProofBuilder.RootHash(_nodes, size);
        var checkpoint = SignedCheckpoint.Create(Origin, size, root, key);
        Seal(size, segment);
        DurableFile.WriteAtomic(Path.Combine(Directory, VerifierKeyFile), Encoding.UTF8.GetBytes(key.VerifierKey + "\n"));
        DurableFile.WriteAtomic(Path.Combine(Directory, CheckpointFile), Encoding.UTF8.GetBytes(checkpoint.NoteText));
        Log.Checkpointed(_logger, Directory, size, key.Name);
        _metrics.Checkpoint(size);
        return checkpoint;
    }

    /// <summary>The checkpoint signer's path: on <paramref name="full"/> runs the whole log is verified first (a repaired log, whose only problem is its quarantine, may be signed: the repair event is in it).</summary>
    internal SignedCheckpoint CreateVerifiedCheckpoint(AuditSigningKey key, bool full)
    {
        ThrowIfReadOnly();
        if (full && _pg is not null)
        {
            var verified = _pg.Reading(s => s.Verify(key.ToVerifierKey()));
            if (!verified.IsValid)
            {
                throw new InvalidDataException($"Verification failed, so no checkpoint was signed: {verified}");
            }
        }
        else if (full)
        {
            long limit;
            lock (_commitLock)
            {
                limit = _segmentLength;
            }

            var result = LogVerifier.Verify(Directory, limit, key.ToVerifierKey());
            if (!result.IsValid && result.Problem != AuditVerificationProblem.Quarantined)
            {
                throw new InvalidDataException($"Verification failed, so no checkpoint was signed: {result}");
            }
        }

        var checkpoint = CreateCheckpoint(key);
        return checkpoint;
    }

    /// <summary>Verifies entries [<paramref name="from"/>, <paramref name="to"/>) against their frames, the chain, the stored leaf hashes and the query index.</summary>
    private void VerifyRange(long from, long to)
    {
        var previous = new byte[MerkleHasher.HashSize];
        var stored = new byte[MerkleHasher.HashSize];
        if (from > 0)
        {
            _nodes.ReadNode(0, from - 1, previous);
        }

        for (var i = from; i < to; i++)
        {
            var row = _index.Read(i);
            var entry = ReadEntry(i, row);
            if (!entry.PreviousHashBytes.AsSpan().SequenceEqual(previous))
            {
                throw new InvalidDataException($"Entry {i} (offset {row.Offset}): prev is not the leaf hash of entry {i - 1}; no checkpoint was signed. Run verify.");
            }

            _nodes.ReadNode(0, i, stored);
            if (!entry.LeafHashBytes.AsSpan().SequenceEqual(stored))
            {
                throw new InvalidDataException($"Entry {i} (offset {row.Offset}): the stored Merkle leaf differs from the entry's hash; no checkpoint was signed. Run verify.");
            }

            if (IndexRow.For(row.Offset, row.FrameLength, entry.Record) != row)
            {
                throw new InvalidDataException($"Entry {i} (offset {row.Offset}): its query index row does not match the entry; no checkpoint was signed. Run verify.");
            }

            entry.LeafHashBytes.CopyTo(previous, 0);
        }
    }
}
