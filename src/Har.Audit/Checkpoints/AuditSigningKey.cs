using System.Buffers.Binary;
using System.Security.Cryptography;
using System.Text;
using NSec.Cryptography;

namespace Har.Audit;

/// <summary>
/// An Ed25519 checkpoint-signing key in the C2SP signed-note format. Stored as one line
/// <c>PRIVATE+KEY+&lt;name&gt;+&lt;key id hex&gt;+&lt;base64(0x01 ‖ seed)&gt;</c> (the layout Go's <c>note</c> package uses);
/// its public half is the verifier key string <see cref="VerifierKey"/>.
/// </summary>
public sealed class AuditSigningKey : IDisposable
{
    private const string Prefix = "PRIVATE+KEY+";
    private static readonly SignatureAlgorithm Algorithm = SignatureAlgorithm.Ed25519;
    private readonly Key _key;

    private AuditSigningKey(string name, Key key)
    {
        Name = name;
        _key = key;
        PublicKey = key.PublicKey.Export(KeyBlobFormat.RawPublicKey);
        KeyId = AuditVerifierKey.ComputeKeyId(name, PublicKey);
        VerifierKey = AuditVerifierKey.Format(name, KeyId, PublicKey);
    }

    /// <summary>Gets the key name (conventionally the log's origin, e.g. <c>audit.example.com/har</c>).</summary>
    public string Name { get; }

    /// <summary>Gets the key id: the first 4 bytes of SHA-256(name ‖ 0x0A ‖ 0x01 ‖ public key), big-endian.</summary>
    public uint KeyId { get; }

    /// <summary>Gets the verifier key string <c>name+keyid+base64(0x01 ‖ public key)</c> to give to verifiers.</summary>
    public string VerifierKey { get; }

    internal byte[] PublicKey { get; }

    /// <summary>Generates a new random key.</summary>
    /// <param name="name">The key name: non-empty, no whitespace or '+'.</param>
    /// <returns>The key.</returns>
    /// <exception cref="ArgumentNullException"><paramref name="name"/> is <see langword="null"/>.</exception>
    /// <exception cref="ArgumentException"><paramref name="name"/> is empty, or holds '+', white space or control characters.</exception>
    public static AuditSigningKey Generate(string name)
    {
        ArgumentNullException.ThrowIfNull(name);
        if (AuditVerifierKey.NameProblem(name) is { } problem)
        {
            throw new ArgumentException(problem, nameof(name));
        }

        var key = Key.Create(Algorithm, new KeyCreationParameters { ExportPolicy = KeyExportPolicies.AllowPlaintextExport });
        return new AuditSigningKey(name, key);
    }

    /// <summary>Parses a key from its <c>PRIVATE+KEY+…</c> line.</summary>
    /// <param name="text">The key line.</param>
    /// <returns>The key.</returns>
    /// <exception cref="FormatException">The text is not a signing key of this format, or its key id does not match.</exception>
    internal static AuditSigningKey Parse(string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        text = text.Trim();
        if (!text.StartsWith(Prefix, StringComparison.Ordinal))
        {
            throw new FormatException($"Not a signing key: expected a line starting with '{Prefix}'.");
        }

        var parts = text[Prefix.Length..].Split('+', 3);
        if (parts.Length != 3)
        {
            throw new FormatException("Malformed signing key: expected PRIVATE+KEY+<name>+<key id hex>+<base64 key>.");
        }

        byte[] blob;
        try
        {
            blob = Convert.FromBase64String(parts[2]);
        }
        catch (FormatException ex)
        {
            throw new FormatException("Malformed signing key: the key data is not base64.", ex);
        }

        if (blob.Length != 33 || blob[0] != 0x01)
        {
            throw new FormatException($"Unsupported signing key: expected an Ed25519 key (algorithm byte 0x01 and a 32-byte seed), got {blob.Length} bytes.");
        }

        AuditVerifierKey.ValidateName(parts[0]);
        var key = Key.Import(Algorithm, blob.AsSpan(1), KeyBlobFormat.RawPrivateKey, new KeyCreationParameters { ExportPolicy = KeyExportPolicies.AllowPlaintextExport });
        CryptographicOperations.ZeroMemory(blob);
        var signing = new AuditSigningKey(parts[0], key);
        if (!string.Equals(signing.KeyId.ToString("x8", System.Globalization.CultureInfo.InvariantCulture), parts[1], StringComparison.Ordinal))
        {
            signing.Dispose();
            throw new FormatException($"Signing key id {parts[1]} does not match the key (expected {signing.KeyId:x8}); the file is damaged.");
        }

        return signing;
    }

    /// <summary>Loads a key file written by <see cref="Save"/>.</summary>
    /// <param name="path">The key file.</param>
    /// <returns>The key.</returns>
    public static AuditSigningKey Load(string path)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        return Parse(File.ReadAllText(path));
    }

    /// <summary>Writes the key to a new file, readable by the owner only on Unix. Refuses to overwrite.</summary>
    /// <param name="path">The file to create.</param>
    public void Save(string path)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        var options = new FileStreamOptions { Mode = FileMode.CreateNew, Access = FileAccess.Write };
        if (!OperatingSystem.IsWindows())
        {
            options.UnixCreateMode = UnixFileMode.UserRead | UnixFileMode.UserWrite;
        }

        using var stream = new FileStream(path, options);
        var seed = _key.Export(KeyBlobFormat.RawPrivateKey);
        var blob = new byte[33];
        blob[0] = 0x01;
        seed.CopyTo(blob, 1);
        var line = string.Create(System.Globalization.CultureInfo.InvariantCulture, $"{Prefix}{Name}+{KeyId:x8}+{Convert.ToBase64String(blob)}\n");
        CryptographicOperations.ZeroMemory(seed);
        CryptographicOperations.ZeroMemory(blob);
        stream.Write(Encoding.UTF8.GetBytes(line));
        stream.Flush(true);
    }

    /// <summary>Returns the verifier for this key.</summary>
    /// <returns>The verifier key.</returns>
    public AuditVerifierKey ToVerifierKey() => AuditVerifierKey.Parse(VerifierKey);

    /// <inheritdoc/>
    public void Dispose() => _key.Dispose();

    /// <summary>Signs a message; returns key id (4 bytes, big-endian) ‖ signature, the signed-note signature blob.</summary>
    internal byte[] SignNoteBlob(ReadOnlySpan<byte> message)
    {
        var blob = new byte[4 + 64];
        BinaryPrimitives.WriteUInt32BigEndian(blob, KeyId);
        Algorithm.Sign(_key, message, blob.AsSpan(4));
        return blob;
    }
}

/// <summary>The public half of an <see cref="AuditSigningKey"/>: a C2SP verifier key <c>name+keyid+base64(0x01 ‖ public key)</c>.</summary>
public sealed class AuditVerifierKey
{
    private readonly PublicKey _publicKey;

    private AuditVerifierKey(string name, uint keyId, PublicKey key, string text)
    {
        Name = name;
        KeyId = keyId;
        _publicKey = key;
        Text = text;
    }

    /// <summary>Gets the key name.</summary>
    public string Name { get; }

    /// <summary>Gets the key id (first 4 bytes of SHA-256(name ‖ 0x0A ‖ 0x01 ‖ public key), big-endian).</summary>
    public uint KeyId { get; }

    private string Text { get; }

    /// <summary>Parses a verifier key string.</summary>
    /// <param name="verifierKey">The string <c>name+keyid+base64(0x01 ‖ public key)</c>.</param>
    /// <returns>The verifier.</returns>
    /// <exception cref="FormatException">Malformed, not Ed25519, or the key id does not match name and key.</exception>
    public static AuditVerifierKey Parse(string verifierKey)
    {
        ArgumentNullException.ThrowIfNull(verifierKey);
        verifierKey = verifierKey.Trim();
        var parts = verifierKey.Split('+', 3);
        if (parts.Length != 3 || parts[1].Length != 8)
        {
            throw new FormatException($"Malformed verifier key '{verifierKey}': expected <name>+<8 hex digit key id>+<base64 key>.");
        }

        ValidateName(parts[0]);
        byte[] blob;
        try
        {
            blob = Convert.FromBase64String(parts[2]);
        }
        catch (FormatException ex)
        {
            throw new FormatException($"Malformed verifier key '{verifierKey}': the key data is not base64.", ex);
        }

        if (blob.Length != 33 || blob[0] != 0x01)
        {
            throw new FormatException($"Unsupported verifier key '{verifierKey}': expected an Ed25519 key (algorithm byte 0x01 and 32 key bytes).");
        }

        var raw = blob.AsSpan(1);
        var id = ComputeKeyId(parts[0], raw);
        if (!uint.TryParse(parts[1], System.Globalization.NumberStyles.AllowHexSpecifier, System.Globalization.CultureInfo.InvariantCulture, out var claimed) || claimed != id)
        {
            throw new FormatException($"Verifier key '{verifierKey}': key id {parts[1]} does not match the name and key (expected {id:x8}).");
        }

        var key = PublicKey.Import(SignatureAlgorithm.Ed25519, raw, KeyBlobFormat.RawPublicKey);
        return new AuditVerifierKey(parts[0], id, key, verifierKey);
    }

    /// <summary>Verifies an Ed25519 signature over <paramref name="message"/>.</summary>
    /// <param name="message">The signed bytes.</param>
    /// <param name="signature">The 64-byte signature.</param>
    /// <returns><see langword="true"/> when the signature is valid.</returns>
    internal bool Verify(ReadOnlySpan<byte> message, ReadOnlySpan<byte> signature) =>
        signature.Length == 64 && SignatureAlgorithm.Ed25519.Verify(_publicKey, message, signature);

    /// <summary>Returns the verifier key string.</summary>
    /// <returns>The string <c>name+keyid+base64(0x01 ‖ public key)</c>.</returns>
    public override string ToString() => Text;

    internal static uint ComputeKeyId(string name, ReadOnlySpan<byte> publicKey)
    {
        var nameBytes = Encoding.UTF8.GetBytes(name);
        var input = new byte[nameBytes.Length + 2 + publicKey.Length];
        nameBytes.CopyTo(input, 0);
        input[nameBytes.Length] = 0x0A;
        input[nameBytes.Length + 1] = 0x01;
        publicKey.CopyTo(input.AsSpan(nameBytes.Length + 2));
        return BinaryPrimitives.ReadUInt32BigEndian(SHA256.HashData(input));
    }

    internal static string Format(string name, uint keyId, ReadOnlySpan<byte> publicKey)
    {
        var blob = new byte[1 + publicKey.Length];
        blob[0] = 0x01;
        publicKey.CopyTo(blob.AsSpan(1));
        return string.Create(System.Globalization.CultureInfo.InvariantCulture, $"{name}+{keyId:x8}+{Convert.ToBase64String(blob)}");
    }

    internal static void ValidateName(string name)
    {
        if (NameProblem(name) is { } problem)
        {
            throw new FormatException(problem);
        }
    }

    /// <summary>Why <paramref name="name"/> cannot name a key, or <see langword="null"/>.</summary>
    internal static string? NameProblem(string? name) =>
        string.IsNullOrEmpty(name) || name.Contains('+', StringComparison.Ordinal) || name.Any(c => char.IsWhiteSpace(c) || char.IsControl(c))
            ? $"Key name '{Escaped(name)}' is not valid: expected a non-empty name without '+', spaces or control characters (e.g. the log origin 'audit.example.com/har')."
            : null;

    /// <summary>
    /// The name as a message shows it: control characters as <c>\u000a</c> escapes, so that the message stays one line
    /// (a name with a line break broke `har audit keygen`'s error in two), and at most 80 characters.
    /// </summary>
    private static string Escaped(string? name)
    {
        if (string.IsNullOrEmpty(name))
        {
            return string.Empty;
        }

        var text = new System.Text.StringBuilder();
        foreach (var c in name.Length > 80 ? name[..80] : name)
        {
            if (char.IsControl(c))
            {
                text.Append(System.Globalization.CultureInfo.InvariantCulture, $"\\u{(int)c:x4}");
            }
            else
            {
                text.Append(c);
            }
        }

        return name.Length > 80 ? text.Append('…').ToString() : text.ToString();
    }
}
