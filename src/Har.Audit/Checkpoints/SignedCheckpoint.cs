using System.Buffers.Binary;
using System.Globalization;
using System.Text;

namespace Har.Audit;

/// <summary>
/// A C2SP <c>tlog-checkpoint</c> (origin, tree size, base64 root hash) signed as a C2SP <c>signed-note</c>
/// with Ed25519: the text, a blank line, then one line <c>— &lt;key name&gt; base64(key id ‖ signature)</c> per signature.
/// </summary>
public sealed class SignedCheckpoint
{
    private const char EmDash = '\u2014';

    private SignedCheckpoint(string origin, long treeSize, byte[] rootHash, string noteText)
    {
        Origin = origin;
        TreeSize = treeSize;
        RootHashBytes = rootHash;
        NoteText = noteText;
    }

    /// <summary>Gets the log's origin line (its unique name).</summary>
    public string Origin { get; }

    /// <summary>Gets the number of entries the checkpoint commits to.</summary>
    public long TreeSize { get; }

    /// <summary>Gets the RFC 9162 root hash of the first <see cref="TreeSize"/> entries.</summary>
    public ReadOnlyMemory<byte> RootHash => RootHashBytes;

    /// <summary>Gets the complete signed note (checkpoint body, blank line, signature lines).</summary>
    public string NoteText { get; }

    internal byte[] RootHashBytes { get; }

    /// <summary>Signs a checkpoint.</summary>
    /// <param name="origin">The log origin (one line, non-empty).</param>
    /// <param name="treeSize">The tree size.</param>
    /// <param name="rootHash">The 32-byte root hash at <paramref name="treeSize"/>.</param>
    /// <param name="key">The signing key.</param>
    /// <returns>The signed checkpoint.</returns>
    internal static SignedCheckpoint Create(string origin, long treeSize, ReadOnlySpan<byte> rootHash, AuditSigningKey key)
    {
        ArgumentNullException.ThrowIfNull(key);
        ArgumentException.ThrowIfNullOrEmpty(origin);
        ArgumentOutOfRangeException.ThrowIfNegative(treeSize);
        if (origin.Contains('\n', StringComparison.Ordinal) || origin.Trim() != origin)
        {
            throw new ArgumentException($"Origin '{origin}' must be one line without leading or trailing whitespace.", nameof(origin));
        }

        if (rootHash.Length != 32)
        {
            throw new ArgumentException($"Root hash has {rootHash.Length} bytes; expected 32 (SHA-256).", nameof(rootHash));
        }

        var body = string.Create(CultureInfo.InvariantCulture, $"{origin}\n{treeSize}\n{Convert.ToBase64String(rootHash)}\n");
        var sig = key.SignNoteBlob(Encoding.UTF8.GetBytes(body));
        var note = $"{body}\n{EmDash} {key.Name} {Convert.ToBase64String(sig)}\n";
        return new SignedCheckpoint(origin, treeSize, rootHash.ToArray(), note);
    }

    /// <summary>Parses a signed checkpoint note (signatures are not verified here; call <see cref="Verify"/>).</summary>
    /// <param name="noteText">The note.</param>
    /// <returns>The checkpoint.</returns>
    /// <exception cref="FormatException">The note is not a well-formed signed checkpoint.</exception>
    public static SignedCheckpoint Parse(string noteText)
    {
        ArgumentNullException.ThrowIfNull(noteText);
        var split = noteText.IndexOf("\n\n", StringComparison.Ordinal);
        if (split < 0 || !noteText.EndsWith('\n'))
        {
            throw new FormatException("Not a signed note: expected the checkpoint text, a blank line, then signature lines, ending with a newline.");
        }

        var body = noteText[..(split + 1)];
        var lines = body.Split('\n');
        if (lines.Length < 4)
        {
            throw new FormatException("Not a checkpoint: expected origin, tree size and root hash lines.");
        }

        var origin = lines[0];
        if (origin.Length == 0)
        {
            throw new FormatException("Checkpoint origin line is empty.");
        }

        if (!long.TryParse(lines[1], NumberStyles.None, CultureInfo.InvariantCulture, out var size) || (lines[1].Length > 1 && lines[1][0] == '0'))
        {
            throw new FormatException($"Checkpoint tree size '{lines[1]}' is not a non-negative decimal integer without leading zeros.");
        }

        byte[] root;
        try
        {
            root = Convert.FromBase64String(lines[2]);
        }
        catch (FormatException ex)
        {
            throw new FormatException($"Checkpoint root hash '{lines[2]}' is not base64.", ex);
        }

        if (root.Length != 32)
        {
            throw new FormatException($"Checkpoint root hash has {root.Length} bytes; expected 32.");
        }

        var sigLines = noteText[(split + 2)..^1].Split('\n');
        foreach (var line in sigLines)
        {
            if (line.Length < 3 || line[0] != EmDash || line[1] != ' ' || line.Split(' ').Length != 3)
            {
                throw new FormatException($"Malformed signature line '{line}': expected '— <key name> <base64 signature>'.");
            }
        }

        return new SignedCheckpoint(origin, size, root, noteText);
    }

    /// <summary>Checks that the note carries a valid signature by <paramref name="verifier"/>.</summary>
    /// <param name="verifier">The trusted verifier key.</param>
    /// <returns><see langword="true"/> when a signature line with the verifier's name and key id verifies over the checkpoint text.</returns>
    public bool Verify(AuditVerifierKey verifier)
    {
        ArgumentNullException.ThrowIfNull(verifier);
        var split = NoteText.IndexOf("\n\n", StringComparison.Ordinal);
        var message = Encoding.UTF8.GetBytes(NoteText[..(split + 1)]);
        foreach (var line in NoteText[(split + 2)..^1].Split('\n'))
        {
            var parts = line.Split(' ');
            if (parts.Length != 3 || !string.Equals(parts[1], verifier.Name, StringComparison.Ordinal))
            {
                continue;
            }

            byte[] blob;
            try
            {
                blob = Convert.FromBase64String(parts[2]);
            }
            catch (FormatException)
            {
                continue;
            }

            if (blob.Length == 68 && BinaryPrimitives.ReadUInt32BigEndian(blob) == verifier.KeyId && verifier.Verify(message, blob.AsSpan(4)))
            {
                return true;
            }
        }

        return false;
    }

    /// <summary>Returns the note text.</summary>
    /// <returns>The signed note.</returns>
    public override string ToString() => NoteText;
}
