using System.Globalization;
using System.Text;
using System.Text.Json;
using Har.Audit.Merkle;

namespace Har.Audit;

/// <summary>The acknowledgement of an append: the entry's index and leaf hash, returned only after its bytes were fsynced.</summary>
public readonly struct AuditAppendResult
{
    internal AuditAppendResult(long index, ReadOnlyMemory<byte> leafHash, bool alreadyPresent = false)
    {
        Index = index;
        LeafHash = leafHash;
        AlreadyPresent = alreadyPresent;
    }

    /// <summary>Gets the entry's 0-based index.</summary>
    public long Index { get; }

    /// <summary>Gets the entry's RFC 9162 leaf hash.</summary>
    public ReadOnlyMemory<byte> LeafHash { get; }

    /// <summary>
    /// Gets whether <see cref="AuditLog.AppendOnceAsync"/> found the record already in the log and appended nothing:
    /// <see cref="Index"/> and <see cref="LeafHash"/> are then those of the entry found.
    /// </summary>
    public bool AlreadyPresent { get; }

    /// <inheritdoc/>
    public override string ToString() => string.Create(CultureInfo.InvariantCulture, $"entry {Index} (leaf {Convert.ToHexStringLower(LeafHash.Span)}){(AlreadyPresent ? ", already present" : "")}");
}

/// <summary>One entry of the log: the record with its position, chain link and hashes.</summary>
public sealed class AuditEntry
{
    internal AuditEntry(long index, AuditRecord record, byte[] previousHash, byte[] payload, byte[] leafHash)
    {
        Index = index;
        Record = record;
        PreviousHashBytes = previousHash;
        Payload = payload;
        LeafHashBytes = leafHash;
    }

    /// <summary>Gets the entry's 0-based index.</summary>
    public long Index { get; }

    /// <summary>Gets the record.</summary>
    public AuditRecord Record { get; }

    /// <summary>Gets the record type.</summary>
    public AuditRecordKind Kind => Record.Kind;

    /// <summary>Gets the record's timestamp.</summary>
    public DateTimeOffset Timestamp => Record.Timestamp;

    /// <summary>Gets the event type the entry is indexed under (<c>deployment</c>, <c>rollback</c>, or an event's <c>event_type</c>).</summary>
    public string EventType => Record.IndexEventType;

    /// <summary>Gets the entity type the entry is indexed under (<c>model</c> for deployments and rollbacks).</summary>
    public string EntityType => Record.IndexEntityType;

    /// <summary>Gets the entity id the entry is indexed under (the model name for deployments and rollbacks).</summary>
    public string EntityId => Record.IndexEntityId;

    /// <summary>Gets the actor the entry is indexed under (deployer, rollback operator or event actor).</summary>
    public string Actor => Record.IndexActor;

    /// <summary>Gets the leaf hash of the previous entry (32 zero bytes for entry 0): the hash chain.</summary>
    public ReadOnlyMemory<byte> PreviousHash => PreviousHashBytes;

    /// <summary>Gets the stored entry bytes: canonical JSON <c>{"index","kind","prev","record"}</c>.</summary>
    public ReadOnlyMemory<byte> CanonicalJson => Payload;

    /// <summary>Gets the entry's RFC 9162 leaf hash, SHA-256(0x00 ‖ <see cref="CanonicalJson"/>).</summary>
    public ReadOnlyMemory<byte> LeafHash => LeafHashBytes;

    /// <inheritdoc/>
    public override string ToString() => string.Create(CultureInfo.InvariantCulture, $"#{Index} {Timestamp.UtcDateTime:yyyy-MM-dd'T'HH:mm:ss'Z'} {EventType} {EntityType}/{EntityId} by {Actor}");

    internal byte[] PreviousHashBytes { get; }

    internal byte[] Payload { get; }

    internal byte[] LeafHashBytes { get; }
}

/// <summary>A query over the log. Every filter is optional; results are in index order.</summary>
public sealed class AuditQuery
{
    /// <summary>Gets the event type to match (<c>deployment</c>, <c>rollback</c> or an event's type).</summary>
    public string? EventType { get; init; }

    /// <summary>Gets the entity type to match.</summary>
    public string? EntityType { get; init; }

    /// <summary>Gets the entity id to match.</summary>
    public string? EntityId { get; init; }

    /// <summary>Gets the actor to match.</summary>
    public string? Actor { get; init; }

    /// <summary>Gets the record type to match.</summary>
    public AuditRecordKind? Kind { get; init; }

    /// <summary>Gets the severity to match exactly. Only audit events have a severity, so deployment and rollback records never match a severity filter.</summary>
    public AuditSeverity? Severity { get; init; }

    /// <summary>Gets the lowest severity to match (<see cref="AuditSeverity.Warning"/> matches warning, error and critical events). Only audit events have a severity.</summary>
    public AuditSeverity? MinimumSeverity { get; init; }

    /// <summary>Gets the inclusive lower bound of the record timestamp.</summary>
    public DateTimeOffset? From { get; init; }

    /// <summary>Gets the exclusive upper bound of the record timestamp.</summary>
    public DateTimeOffset? To { get; init; }

    /// <summary>Gets the most entries per page (1 to 1000).</summary>
    /// <value>The default value is 100.</value>
    public int PageSize { get; init; } = 100;

    /// <summary>Gets the token of the page to read, from <see cref="AuditPage.NextPageToken"/>; <see langword="null"/> for the first page.</summary>
    public string? PageToken { get; init; }
}

/// <summary>A page of query results.</summary>
public sealed class AuditPage
{
    internal AuditPage(IReadOnlyList<AuditEntry> entries, string? next)
    {
        Entries = entries;
        NextPageToken = next;
    }

    /// <summary>Gets the matching entries, in index order.</summary>
    public IReadOnlyList<AuditEntry> Entries { get; }

    /// <summary>Gets the token for the next page, or <see langword="null"/> when the query reached the end of the log.
    /// Pages are stable: the log is append-only and tokens are index cursors, so no entry is skipped or repeated.</summary>
    public string? NextPageToken { get; }

    /// <inheritdoc/>
    public override string ToString()
    {
        var sb = new StringBuilder();
        sb.Append(Messages.Entries(Entries.Count));
        sb.Append(NextPageToken is null ? "; end of log" : $"; next page token {NextPageToken}");
        foreach (var e in Entries)
        {
            sb.Append(CultureInfo.InvariantCulture, $"\n  {e}");
        }

        return sb.ToString();
    }
}

/// <summary>What <see cref="AuditLog.Repair"/> (or an open) found and removed: the damaged entries moved to quarantine and the event that records it.</summary>
public sealed class AuditRecoveryReport
{
    internal AuditRecoveryReport()
    {
    }

    /// <summary>Gets the number of entries trusted from the last recovery seal without re-scanning.</summary>
    internal long SealedEntries { get; init; }

    /// <summary>Gets the number of entries re-scanned after the seal (framing, CRC, chain, record schema).</summary>
    internal long ScannedEntries { get; init; }

    /// <summary>Gets the number of entries in the log after recovery.</summary>
    public long Entries { get; internal init; }

    /// <summary>Gets a value indicating whether a torn tail was truncated (or, in a repair, damaged entries were removed).</summary>
    internal bool TailTruncated { get; init; }

    /// <summary>Gets the segment offset where the bad tail began.</summary>
    public long? TruncatedAtOffset { get; internal init; }

    /// <summary>Gets the number of bytes removed from the segment (a copy is kept at <see cref="QuarantinePath"/>).</summary>
    public long TruncatedBytes { get; internal init; }

    /// <summary>Gets why the tail was rejected (bad length, CRC mismatch, broken chain …).</summary>
    public string? Reason { get; internal init; }

    /// <summary>Gets where the copy of the removed bytes was kept.</summary>
    public string? QuarantinePath { get; internal init; }

    /// <summary>Gets a value indicating whether the derived files were rebuilt from the start because the seal was missing or did not match them.</summary>
    internal bool RebuiltFromStart { get; init; }

    /// <summary>Gets, for a read-only open, the segment offset where the view stopped short (nothing was changed), or <see langword="null"/>.</summary>
    internal long? StoppedAtOffset { get; init; }

    /// <summary>Gets, for a read-only open, where and why the view stopped short of the segment's end or of the latest checkpoint (see <see cref="AuditLog.ReadOnlyStopReason"/>).</summary>
    internal string? StopReason { get; init; }

    /// <summary>Gets the index of the <c>audit.log.repaired</c> event that <see cref="AuditLog.Repair"/> appended, or <see langword="null"/> when nothing was repaired.</summary>
    public long? RepairEventIndex { get; internal init; }

    /// <inheritdoc/>
    public override string ToString()
    {
        var text = string.Create(CultureInfo.InvariantCulture, $"{Messages.Entries(Entries)} ({SealedEntries} trusted from the seal, {ScannedEntries} re-scanned{(RebuiltFromStart ? ", derived files rebuilt" : string.Empty)})");
        if (TailTruncated)
        {
            text += string.Create(CultureInfo.InvariantCulture, $"; removed {Messages.Bytes(TruncatedBytes)} at offset {TruncatedAtOffset}: {Reason}; copy at {QuarantinePath}");
        }

        if (StopReason is not null)
        {
            text += "; read-only view: " + StopReason;
        }

        return RepairEventIndex is { } i ? text + string.Create(CultureInfo.InvariantCulture, $"; repair recorded as entry {i}") : text;
    }
}

/// <summary>Which check of <see cref="AuditLog.Verify()"/> failed (named in <see cref="AuditVerificationResult.ToString"/>; <see cref="AuditVerificationResult.Message"/> says what was wrong).</summary>
internal enum AuditVerificationProblem
{
    /// <summary>Everything verified.</summary>
    None,

    /// <summary>The segment header is not <c>HARLOG01</c>.</summary>
    Header,

    /// <summary>A frame's length is impossible (zero, too large, or past the end of the file).</summary>
    Framing,

    /// <summary>A frame's CRC-32C does not match its bytes.</summary>
    Checksum,

    /// <summary>An entry is not a well-formed entry or its record fails its schema.</summary>
    Entry,

    /// <summary>An entry carries the wrong index.</summary>
    Index,

    /// <summary>An entry's <c>prev</c> is not the previous entry's leaf hash.</summary>
    Chain,

    /// <summary>A stored Merkle node differs from the one recomputed from the entries.</summary>
    StoredTree,

    /// <summary>A row of the query index differs from its entry.</summary>
    QueryIndex,

    /// <summary>The checkpoint's signature does not verify with the verifier key.</summary>
    CheckpointSignature,

    /// <summary>The checkpoint commits to more entries than the log holds.</summary>
    CheckpointSize,

    /// <summary>The Merkle root of the log at the checkpoint size differs from the signed root.</summary>
    CheckpointRoot,

    /// <summary>The checkpoint names another log (origin).</summary>
    CheckpointOrigin,

    /// <summary>Everything present verifies, but a repair removed entries (kept in <c>quarantine/</c>): the log is incomplete.</summary>
    Quarantined,
}

/// <summary>The outcome of verifying the whole log.</summary>
public sealed class AuditVerificationResult
{
    internal AuditVerificationResult()
    {
    }

    /// <summary>Gets a value indicating whether every check passed.</summary>
    public bool IsValid => Problem == AuditVerificationProblem.None;

    /// <summary>Gets the failed check, or <see cref="AuditVerificationProblem.None"/>.</summary>
    internal AuditVerificationProblem Problem { get; init; }

    /// <summary>Gets the first entry index at which a problem was found, when the problem belongs to an entry.</summary>
    public long? FirstBadIndex { get; internal init; }

    /// <summary>Gets a one-line description of the outcome.</summary>
    public string Message { get; internal init; } = string.Empty;

    /// <summary>Gets the number of entries that verified.</summary>
    public long EntriesVerified { get; internal init; }

    /// <summary>Gets the Merkle root over all verified entries.</summary>
    public ReadOnlyMemory<byte> RootHash { get; internal init; }

    /// <summary>Gets the latest signed checkpoint the log was verified against, if any.</summary>
    public SignedCheckpoint? Checkpoint { get; internal init; }

    /// <summary>Gets the verifier key the checkpoint signature was checked with, if any.</summary>
    public string? VerifierKey { get; internal init; }

    /// <summary>Gets a value indicating whether the verifier key was pinned by the caller (<see langword="false"/>: taken from the log directory, which proves less).</summary>
    public bool VerifierKeyPinned { get; internal init; }

    /// <inheritdoc/>
    public override string ToString() => IsValid
        ? $"OK: {Message}"
        : $"FAILED ({Problem}{(FirstBadIndex is { } i ? string.Create(CultureInfo.InvariantCulture, $", first bad index {i}") : string.Empty)}): {Message}";
}

/// <summary>An RFC 9162 inclusion proof: entry <see cref="LeafIndex"/> is in the tree of <see cref="TreeSize"/> entries with root <see cref="RootHash"/>.</summary>
internal sealed class InclusionProof
{
    internal InclusionProof(long leafIndex, long treeSize, byte[] leafHash, byte[] rootHash, IReadOnlyList<ReadOnlyMemory<byte>> path)
    {
        LeafIndex = leafIndex;
        TreeSize = treeSize;
        LeafHash = leafHash;
        RootHash = rootHash;
        Path = path;
    }

    /// <summary>Gets the entry's index.</summary>
    public long LeafIndex { get; }

    /// <summary>Gets the tree size the proof is for.</summary>
    public long TreeSize { get; }

    /// <summary>Gets the entry's leaf hash.</summary>
    public ReadOnlyMemory<byte> LeafHash { get; }

    /// <summary>Gets the root of the tree of <see cref="TreeSize"/> entries.</summary>
    public ReadOnlyMemory<byte> RootHash { get; }

    /// <summary>Gets the audit path, from the leaf's sibling to the root's child.</summary>
    public IReadOnlyList<ReadOnlyMemory<byte>> Path { get; }

    /// <summary>Verifies the proof against its own root (take the root from a verified checkpoint to prove anything to a third party).</summary>
    /// <returns><see langword="true"/> when it verifies.</returns>
    public bool Verify() => MerkleProof.VerifyInclusion(LeafIndex, TreeSize, LeafHash.Span, Path, RootHash.Span);

    /// <inheritdoc/>
    public override string ToString() => string.Create(CultureInfo.InvariantCulture, $"inclusion of entry {LeafIndex} in tree size {TreeSize}: root {Convert.ToHexStringLower(RootHash.Span)}, {Messages.Count(Path.Count, "path hash", "path hashes")}");

    /// <summary>Returns the proof as JSON: leaf hash, index, tree size, root and path as lowercase hex.</summary>
    /// <returns>Indented JSON.</returns>
    public string ToJson() => JsonSerializer.Serialize(
        new SortedDictionary<string, object>(StringComparer.Ordinal)
        {
            ["leaf_hash"] = Convert.ToHexStringLower(LeafHash.Span),
            ["leaf_index"] = LeafIndex,
            ["tree_size"] = TreeSize,
            ["root_hash"] = Convert.ToHexStringLower(RootHash.Span),
            ["path"] = Path.Select(p => Convert.ToHexStringLower(p.Span)).ToArray(),
        },
        ProofJson.Options);
}

/// <summary>An RFC 9162 consistency proof: the tree of <see cref="FromSize"/> entries is a prefix of the tree of <see cref="ToSize"/> entries.</summary>
public sealed class ConsistencyProof
{
    internal ConsistencyProof(long fromSize, long toSize, byte[] fromRoot, byte[] toRoot, IReadOnlyList<ReadOnlyMemory<byte>> path)
    {
        FromSize = fromSize;
        ToSize = toSize;
        FromRoot = fromRoot;
        ToRoot = toRoot;
        Path = path;
    }

    /// <summary>Gets the older tree size.</summary>
    public long FromSize { get; }

    /// <summary>Gets the newer tree size.</summary>
    public long ToSize { get; }

    /// <summary>Gets the older root.</summary>
    public ReadOnlyMemory<byte> FromRoot { get; }

    /// <summary>Gets the newer root.</summary>
    public ReadOnlyMemory<byte> ToRoot { get; }

    /// <summary>Gets the proof hashes.</summary>
    public IReadOnlyList<ReadOnlyMemory<byte>> Path { get; }

    /// <summary>Verifies the proof against its own roots.</summary>
    /// <returns><see langword="true"/> when it verifies.</returns>
    public bool Verify() => MerkleProof.VerifyConsistency(FromSize, ToSize, Path, FromRoot.Span, ToRoot.Span);

    /// <inheritdoc/>
    public override string ToString() => string.Create(CultureInfo.InvariantCulture, $"consistency of tree size {FromSize} with {ToSize}: root {Convert.ToHexStringLower(ToRoot.Span)}, {Path.Count} proof hashes");

    /// <summary>Returns the proof as JSON: sizes, roots and path as lowercase hex.</summary>
    /// <returns>Indented JSON.</returns>
    public string ToJson() => JsonSerializer.Serialize(
        new SortedDictionary<string, object>(StringComparer.Ordinal)
        {
            ["from_size"] = FromSize,
            ["to_size"] = ToSize,
            ["from_root"] = Convert.ToHexStringLower(FromRoot.Span),
            ["to_root"] = Convert.ToHexStringLower(ToRoot.Span),
            ["path"] = Path.Select(p => Convert.ToHexStringLower(p.Span)).ToArray(),
        },
        ProofJson.Options);
}

internal static class ProofJson
{
    public static readonly JsonSerializerOptions Options = new() { WriteIndented = true };

    public static byte[] Hash(JsonElement e, string name)
    {
        var s = e.GetProperty(name).GetString() ?? throw new FormatException($"'{name}' must be a hex string.");
        var bytes = Convert.FromHexString(s);
        return bytes.Length == MerkleHasher.HashSize ? bytes : throw new FormatException($"'{name}' has {bytes.Length} bytes; expected 32.");
    }
}
