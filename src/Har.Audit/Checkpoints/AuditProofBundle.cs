using System.Text.Json;
using Har.Audit.Storage;

namespace Har.Audit;

/// <summary>
/// A self-contained proof that one entry is in the log: the entry bytes, its inclusion path, and the
/// signed checkpoint whose size and root the path leads to. Verifies offline with only the log's
/// verifier key (<see cref="Verify"/>). Serialised as JSON (<c>har-audit-proof/v1</c>).
/// </summary>
public sealed class AuditProofBundle
{
    private const string FormatName = "har-audit-proof/v1";

    internal AuditProofBundle(byte[] entry, long leafIndex, IReadOnlyList<ReadOnlyMemory<byte>> path, SignedCheckpoint checkpoint)
    {
        EntryBytes = entry;
        LeafIndex = leafIndex;
        Path = path;
        Checkpoint = checkpoint;
    }

    /// <summary>Gets the entry's stored bytes (canonical JSON).</summary>
    public ReadOnlyMemory<byte> Entry => EntryBytes;

    /// <summary>Gets the entry's index.</summary>
    public long LeafIndex { get; }

    /// <summary>Gets the inclusion path to the checkpoint's root.</summary>
    public IReadOnlyList<ReadOnlyMemory<byte>> Path { get; }

    /// <summary>Gets the signed checkpoint the proof is relative to.</summary>
    public SignedCheckpoint Checkpoint { get; }

    internal byte[] EntryBytes { get; }

    /// <summary>Gets why the bundle's readable copy of the entry is not the proven entry, or <see langword="null"/> when it is (or absent).</summary>
    internal string? ReadableProblem { get; private init; }

    /// <summary>Parses a bundle written by <see cref="ToJson"/>.</summary>
    /// <param name="json">The bundle JSON.</param>
    /// <returns>The bundle.</returns>
    /// <exception cref="FormatException">The JSON is not a proof bundle.</exception>
    public static AuditProofBundle Parse(string json)
    {
        ArgumentNullException.ThrowIfNull(json);
        try
        {
            using var doc = JsonDocument.Parse(json);
            var root = doc.RootElement;
            if (root.GetProperty("format").GetString() != FormatName)
            {
                throw new FormatException($"Not a proof bundle: expected format '{FormatName}'.");
            }

            var path = root.GetProperty("inclusion_path").EnumerateArray().Select(e => (ReadOnlyMemory<byte>)Convert.FromHexString(e.GetString()!)).ToList();
            var entry = Convert.FromBase64String(root.GetProperty("entry").GetString()!);
            string? readableProblem = null;
            if (root.TryGetProperty("entry_json", out var readable))
            {
                // What a reader looks at must be what is proven: the readable copy is compared with the proven bytes.
                try
                {
                    using var proven = JsonDocument.Parse(entry);
                    if (!JsonElement.DeepEquals(readable, proven.RootElement))
                    {
                        readableProblem = "the readable copy (entry_json) differs from the proven entry: it was edited; read the entry from 'entry'";
                    }
                }
                catch (JsonException)
                {
                    readableProblem = "the proven entry is not JSON, so its readable copy (entry_json) cannot be it";
                }
            }

            return new AuditProofBundle(
                entry,
                root.GetProperty("leaf_index").GetInt64(),
                path,
                SignedCheckpoint.Parse(root.GetProperty("checkpoint").GetString()!))
            { ReadableProblem = readableProblem };
        }
        catch (Exception ex) when (ex is JsonException or KeyNotFoundException or InvalidOperationException or NullReferenceException)
        {
            throw new FormatException($"Not a valid proof bundle: {ex.Message}", ex);
        }
    }

    /// <summary>Verifies the bundle offline: that its readable copy (<c>entry_json</c>) is the proven entry, the checkpoint signature with <paramref name="verifier"/>, the entry's own index, and the inclusion path to the signed root at the signed size.</summary>
    /// <param name="verifier">The log's trusted verifier key.</param>
    /// <param name="problem">Why verification failed, or <see langword="null"/>.</param>
    /// <returns><see langword="true"/> when everything verifies.</returns>
    public bool Verify(AuditVerifierKey verifier, out string? problem)
    {
        ArgumentNullException.ThrowIfNull(verifier);
        if (ReadableProblem is { } readable)
        {
            problem = readable;
            return false;
        }

        if (!Checkpoint.Verify(verifier))
        {
            problem = $"the checkpoint carries no valid signature by {verifier.Name}+{verifier.KeyId:x8}";
            return false;
        }

        var parsed = LogEnvelope.TryParse(EntryBytes, out var entryProblem);
        if (parsed is null)
        {
            problem = $"the entry is malformed: {entryProblem}";
            return false;
        }

        if (parsed.Index != LeafIndex)
        {
            problem = $"the entry says index {parsed.Index} but the proof is for index {LeafIndex}";
            return false;
        }

        if (!MerkleProof.VerifyInclusion(LeafIndex, Checkpoint.TreeSize, MerkleProof.HashLeaf(EntryBytes), Path, Checkpoint.RootHash.Span))
        {
            problem = $"the inclusion path does not lead from entry {LeafIndex} to the signed root of size {Checkpoint.TreeSize}";
            return false;
        }

        problem = null;
        return true;
    }

    /// <inheritdoc/>
    public override string ToString() => string.Create(System.Globalization.CultureInfo.InvariantCulture, $"proof of entry {LeafIndex} in {Checkpoint.Origin} at size {Checkpoint.TreeSize} ({Path.Count} path hashes)");

    /// <summary>Serialises the bundle.</summary>
    /// <returns>Indented JSON.</returns>
    public string ToJson()
    {
        using var parsed = JsonDocument.Parse(EntryBytes);
        return JsonSerializer.Serialize(
            new Dictionary<string, object>
            {
                ["format"] = FormatName,
                ["leaf_index"] = LeafIndex,
                ["tree_size"] = Checkpoint.TreeSize,
                ["leaf_hash"] = Convert.ToHexStringLower(MerkleProof.HashLeaf(EntryBytes)),
                ["root_hash"] = Convert.ToHexStringLower(Checkpoint.RootHash.Span),
                ["inclusion_path"] = Path.Select(p => Convert.ToHexStringLower(p.Span)).ToArray(),
                ["entry"] = Convert.ToBase64String(EntryBytes),
                ["entry_json"] = parsed.RootElement.Clone(),
                ["checkpoint"] = Checkpoint.NoteText,
            },
            ProofJson.Options);
    }
}
