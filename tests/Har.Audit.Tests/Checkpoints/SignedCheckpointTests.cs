using System.Text;
using System.Text.Json;
using Har.Testing;

namespace Har.Audit.Tests.Checkpoints;

public sealed class SignedCheckpointTests
{
    /// <summary>The C2SP signed-note example: key id, verifier key and Ed25519 signature (../shared/reference/merkle_vectors.json).</summary>
    [Fact]
    public void Verify_C2spSignedNoteExample_Verifies()
    {
        using var doc = JsonDocument.Parse(File.ReadAllBytes(TestPaths.RequireReference("merkle_vectors.json")));
        var ex = doc.RootElement.GetProperty("computed_signed_note_example");
        var key = AuditVerifierKey.Parse(ex.GetProperty("vkey").GetString()!);
        Assert.Equal(ex.GetProperty("key_name").GetString(), key.Name);
        Assert.Equal(ex.GetProperty("key_id_hex").GetString(), key.KeyId.ToString("x8", System.Globalization.CultureInfo.InvariantCulture));
        Assert.Equal(ex.GetProperty("vkey").GetString(), key.ToString());

        var text = Convert.FromHexString(ex.GetProperty("note_text_utf8_hex").GetString()!);
        var sig = Convert.FromHexString(ex.GetProperty("signature_hex").GetString()!);
        Assert.True(key.Verify(text, sig));
        text[0] ^= 1;
        Assert.False(key.Verify(text, sig));

        // The signature line carries base64(key id ‖ signature).
        var line = ex.GetProperty("signature_line").GetString()!;
        var blob = Convert.FromBase64String(line.Split(' ')[2]);
        Assert.Equal(Convert.FromHexString(ex.GetProperty("key_id_hex").GetString()!), blob[..4]);
        Assert.Equal(sig, blob[4..]);
    }

    [Fact]
    public void Parse_C2spExampleNote_VerifiesAsSignedNoteWithSameKey()
    {
        using var doc = JsonDocument.Parse(File.ReadAllBytes(TestPaths.RequireReference("merkle_vectors.json")));
        var ex = doc.RootElement.GetProperty("computed_signed_note_example");
        var key = AuditVerifierKey.Parse(ex.GetProperty("vkey").GetString()!);

        // A checkpoint-shaped body signed by the generated key verifies; the same note fails under the example key (other key id).
        using var signer = AuditSigningKey.Generate("example.com/foo");
        var cp = SignedCheckpoint.Create("example.com/foo", 7, new byte[32], signer);
        Assert.True(cp.Verify(signer.ToVerifierKey()));
        Assert.False(cp.Verify(key));
    }

    [Fact]
    public void Create_ThenParse_RoundTripsAndVerifies()
    {
        using var key = AuditSigningKey.Generate("audit.example.com/har");
        var root = Enumerable.Range(0, 32).Select(i => (byte)i).ToArray();
        var cp = SignedCheckpoint.Create("audit.example.com/har", 1234, root, key);

        var lines = cp.NoteText.Split('\n');
        Assert.Equal("audit.example.com/har", lines[0]);
        Assert.Equal("1234", lines[1]);
        Assert.Equal(Convert.ToBase64String(root), lines[2]);
        Assert.Equal(string.Empty, lines[3]);
        Assert.StartsWith("\u2014 audit.example.com/har ", lines[4], StringComparison.Ordinal);

        var parsed = SignedCheckpoint.Parse(cp.NoteText);
        Assert.Equal(1234, parsed.TreeSize);
        Assert.Equal(root, parsed.RootHash.ToArray());
        Assert.True(parsed.Verify(AuditVerifierKey.Parse(key.VerifierKey)));
    }

    [Fact]
    public void Verify_TamperedSizeOrRoot_Fails()
    {
        using var key = AuditSigningKey.Generate("log");
        var cp = SignedCheckpoint.Create("log", 10, new byte[32], key);
        var verifier = key.ToVerifierKey();
        Assert.False(SignedCheckpoint.Parse(cp.NoteText.Replace("\n10\n", "\n11\n", StringComparison.Ordinal)).Verify(verifier));
        var otherRoot = Convert.ToBase64String(Enumerable.Repeat((byte)1, 32).ToArray());
        Assert.False(SignedCheckpoint.Parse(cp.NoteText.Replace(Convert.ToBase64String(new byte[32]), otherRoot, StringComparison.Ordinal)).Verify(verifier));
        using var other = AuditSigningKey.Generate("log");
        Assert.False(cp.Verify(other.ToVerifierKey()));
    }

    [Fact]
    public void SigningKey_SaveLoad_KeepsKeyAndRefusesOverwrite()
    {
        using var dir = new TempDir();
        var path = dir.Combine("audit.key");
        using var key = AuditSigningKey.Generate("audit.example.com/har");
        key.Save(path);
        using var loaded = AuditSigningKey.Load(path);
        Assert.Equal(key.VerifierKey, loaded.VerifierKey);
        Assert.StartsWith("PRIVATE+KEY+audit.example.com/har+", File.ReadAllText(path), StringComparison.Ordinal);
        if (!OperatingSystem.IsWindows())
        {
            Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(path));
        }

        Assert.Throws<IOException>(() => key.Save(path));
        var cp = SignedCheckpoint.Create("o", 1, new byte[32], loaded);
        Assert.True(cp.Verify(AuditVerifierKey.Parse(key.VerifierKey)));
    }

    [Theory]
    [InlineData("name+530d903a+AekyeRrm56hApGFkyQR4ZCbV54Id2LKaANYcrnKv3U2k", "key id")]
    [InlineData("example.com/foo+530d903a", "expected <name>")]
    [InlineData("example.com/foo+530d903a+AAAA", "Ed25519")]
    public void VerifierKey_Malformed_ExplainsWhy(string vkey, string expected)
    {
        var ex = Assert.Throws<FormatException>(() => AuditVerifierKey.Parse(vkey));
        Assert.Contains(expected, ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Parse_NotANote_Throws()
    {
        Assert.Throws<FormatException>(() => SignedCheckpoint.Parse("origin\n5\n"));
        Assert.Throws<FormatException>(() => SignedCheckpoint.Parse("origin\n05\n" + Convert.ToBase64String(new byte[32]) + "\n\n\u2014 k AAAA\n"));
        Assert.Throws<FormatException>(() => SignedCheckpoint.Parse("origin\n5\n" + Convert.ToBase64String(new byte[31]) + "\n\n\u2014 k AAAA\n"));
        Assert.NotNull(SignedCheckpoint.Parse("origin\n5\n" + Convert.ToBase64String(new byte[32]) + "\n\n\u2014 k AAAA\n"));
        _ = Encoding.UTF8;
    }
}
