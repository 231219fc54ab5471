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
    /// <exception cref="ArgumentNullException"><paramref name="json"/> is <see langword="null"/>.</exception>
    /// <exception cref="FormatException">The JSON is not a proof bundle: the message names the member that is missing or malformed.</exception>
    public static AuditProofBundle Parse(string json)
    {
        ArgumentNullException.ThrowIfNull(json);
        JsonDocument doc;
        try
        {
            doc = JsonDocument.Parse(json);
        }
        catch (JsonException ex)
        {
            throw Invalid($"it is not JSON ({ex.Message})", ex);
        }

        using (doc)
        {
            var root = doc.RootElement;
            if (root.ValueKind != JsonValueKind.Object)
            {
                throw Invalid($"it is a JSON {Kind(root)}");
            }

            if (Member(root, "format", JsonValueKind.String).GetString() != FormatName)
            {
                throw new FormatException($"Not a proof bundle: expected format '{FormatName}'.");
            }

            var leafIndex = Member(root, "leaf_index", JsonValueKind.Number).TryGetInt64(out var i) && i >= 0
                ? i
                : throw Invalid("'leaf_index' is not a non-negative integer");
            var path = new List<ReadOnlyMemory<byte>>();
            foreach (var hash in Member(root, "inclusion_path", JsonValueKind.Array).EnumerateArray())
            {
                path.Add(hash.ValueKind == JsonValueKind.String && TryHex(hash.GetString()!) is { } bytes
                    ? bytes
                    : throw Invalid(string.Create(System.Globalization.CultureInfo.InvariantCulture, $"'inclusion_path'[{path.Count}] is not a hash in hex")));
            }

            var entryText = Member(root, "entry", JsonValueKind.String).GetString()!;
            byte[] entry;
            try
            {
                entry = Convert.FromBase64String(entryText);
            }
            catch (FormatException ex)
            {
                throw Invalid("'entry' is not base64", ex);
            }

            var note = Member(root, "checkpoint", JsonValueKind.String).GetString()!;
            SignedCheckpoint checkpoint;
            try
            {
                checkpoint = SignedCheckpoint.Parse(note);
            }
            catch (FormatException ex)
            {
                throw Invalid($"'checkpoint' is not a signed checkpoint note ({ex.Message})", ex);
            }

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

            return new AuditProofBundle(entry, leafIndex, path, checkpoint) { ReadableProblem = readableProblem };
        }
    }

    /// <summary>The shape <see cref="Parse"/> expects, for its messages.</summary>
    private const string Shape = "expected a JSON object as ToJson() writes it: {\"format\": \"" + FormatName + "\", \"leaf_index\": <integer>, \"inclusion_path\": [<hex hash>, …], \"entry\": \"<base64>\", \"checkpoint\": \"<signed note>\"}";

    private static FormatException Invalid(string what, Exception? inner = null) =>
        new($"Not a valid proof bundle: {what}; {Shape}.", inner);

    private static JsonElement Member(JsonElement root, string name, JsonValueKind kind)
    {
        if (!root.TryGetProperty(name, out var value))
        {
            throw Invalid($"the member '{name}' is missing");
        }

        return value.ValueKind == kind ? value : throw Invalid($"'{name}' is a JSON {Kind(value)}, not a {Kind(kind)}");
    }

    private static string Kind(JsonElement e) => Kind(e.ValueKind);

    private static string Kind(JsonValueKind kind) => kind switch
    {
        JsonValueKind.Object => "object",
        JsonValueKind.Array => "array",
        JsonValueKind.String => "string",
        JsonValueKind.Number => "number",
        JsonValueKind.True or JsonValueKind.False => "boolean",
        _ => "null",
    };

    private static byte[]? TryHex(string text)
    {
        try
        {
            return Convert.FromHexString(text);
        }
        catch (FormatException)
        {
            return null;
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
    public override string ToString() => string.Create(System.Globalization.CultureInfo.InvariantCulture, $"proof of entry {LeafIndex} in {Checkpoint.Origin} at size {Checkpoint.TreeSize} ({Messages.Count(Path.Count, "path hash", "path hashes")})");

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
