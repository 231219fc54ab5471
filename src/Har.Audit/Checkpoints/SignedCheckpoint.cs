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
        if (OriginProblem(origin) is { } problem)
        {
            throw new ArgumentException(problem, nameof(origin));
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

    /// <summary>
    /// Why <paramref name="origin"/> cannot be a checkpoint's origin line, or <see langword="null"/>: it must be one
    /// non-empty line without surrounding whitespace, valid Unicode (a signed note is UTF-8), and without ASCII control
    /// characters (C2SP signed-note: a note MUST NOT contain any below U+0020 other than newline; Go's <c>note.Open</c>
    /// refuses a checkpoint whose origin holds a tab).
    /// </summary>
    internal static string? OriginProblem(string origin)
    {
        if (origin.Length == 0 || origin.Trim() != origin)
        {
            return $"Origin '{origin}' must be one non-empty line without leading or trailing whitespace.";
        }

        if (ControlCharacter(origin, allowNewline: false) is { } at)
        {
            return string.Create(CultureInfo.InvariantCulture, $"Origin '{origin.ReplaceLineEndings(" ")}' holds the control character U+{(int)origin[at]:X4} at position {at}; a signed note may hold none but its newlines (C2SP signed-note), so verifiers refuse it. Choose an origin of printable characters, e.g. audit.example.com/har.");
        }

        return IsWellFormed(origin) ? null : $"Origin '{origin}' is not valid Unicode (an unpaired surrogate); a signed note is UTF-8.";
    }

    /// <summary>The index of the first ASCII control character (below U+0020; newlines allowed or not), or <see langword="null"/>.</summary>
    private static int? ControlCharacter(string text, bool allowNewline)
    {
        for (var i = 0; i < text.Length; i++)
        {
            if (text[i] < ' ' && !(allowNewline && text[i] == '\n'))
            {
                return i;
            }
        }

        return null;
    }

    private static bool IsWellFormed(string text)
    {
        for (var i = 0; i < text.Length; i++)
        {
            if (char.IsHighSurrogate(text[i]) && i + 1 < text.Length && char.IsLowSurrogate(text[i + 1]))
            {
                i++;
            }
            else if (char.IsSurrogate(text[i]))
            {
                return false;
            }
        }

        return true;
    }

    /// <summary>Decodes base64 in its canonical form only (RFC 4648 §4, padded, nothing skipped), as Go's verifiers read it.</summary>
    private static byte[]? CanonicalBase64(string text)
    {
        var bytes = new byte[(text.Length / 4 * 3) + 3];
        return Convert.TryFromBase64String(text, bytes, out var written) && Convert.ToBase64String(bytes, 0, written) == text
            ? bytes[..written]
            : null;
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

        if (ControlCharacter(noteText, allowNewline: true) is { } control)
        {
            throw new FormatException(string.Create(CultureInfo.InvariantCulture, $"The note holds the control character U+{(int)noteText[control]:X4} at position {control}; a signed note may hold none but newlines (C2SP signed-note)."));
        }

        if (!IsWellFormed(noteText))
        {
            throw new FormatException("The note is not valid Unicode (an unpaired surrogate); a signed note is UTF-8.");
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

        var root = CanonicalBase64(lines[2]) ?? throw new FormatException($"Checkpoint root hash '{lines[2]}' is not base64 in its canonical form (RFC 4648, padded, nothing else on the line).");
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
    /// <returns>
    /// <see langword="true"/> when the note's first signature line with the verifier's name and key id verifies over the
    /// checkpoint text. A failing signature by the trusted key fails the whole note, even beside a valid one (C2SP
    /// signed-note: clients SHOULD reject it; Go's <c>note.Open</c> does), and so does a line with the verifier's name
    /// whose signature is not canonical base64.
    /// </returns>
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

            if (CanonicalBase64(parts[2]) is not { Length: >= 4 } blob)
            {
                return false; // malformed: Go refuses the note
            }

            if (BinaryPrimitives.ReadUInt32BigEndian(blob) == verifier.KeyId)
            {
                return blob.Length == 68 && verifier.Verify(message, blob.AsSpan(4));
            }
        }

        return false;
    }

    /// <summary>Returns the note text.</summary>
    /// <returns>The signed note.</returns>
    public override string ToString() => NoteText;
}
