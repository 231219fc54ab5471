using System.Buffers.Binary;
using System.Diagnostics;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json.Nodes;
using Har.Audit.Hashing;
using Har.Testing;

namespace Har.Audit.Tests.Conformance;

/// <summary>
/// Har.Audit's signed checkpoints, proof bundles, consistency proofs and logs, checked by an implementation that is not
/// Har's own: Go's reference code for signed notes and transparency logs (golang.org/x/mod/sumdb/note and
/// golang.org/x/mod/sumdb/tlog, where the C2SP signed-note and tlog-checkpoint formats come from), through the small
/// verifier in tests/external/tlog-verify (note.Open, tlog.RecordHash, tlog.TreeHash, tlog.CheckRecord, tlog.CheckTree).
/// The logs are built with the public API: checkpoints at several sizes (1, 2, 3, 7, 8, 9, 100, 1025), inclusion proofs
/// at each, consistency proofs between every two of them; Go must accept them all and refuse every tampered copy.
/// Skips with the reason when Go or golang.org/x/mod is not installed (.ci/steps/30-go.sh installs both).
/// </summary>
public sealed class GoTlogVerifierTests(GoTlogVerifierFixture go) : IClassFixture<GoTlogVerifierFixture>
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task Go_VerifiesEveryCheckpointInclusionAndConsistencyProof()
    {
        go.Require();
        List<string> args = ["-vkey", go.VerifierKeyFile, "-log", go.Export];
        args.AddRange(go.Checkpoints.Values.SelectMany(f => new[] { "-checkpoint", f }));
        args.AddRange(go.Bundles.SelectMany(f => new[] { "-bundle", f }));
        args.AddRange(go.Consistency.SelectMany(f => new[] { "-consistency", f }));

        var (code, output) = await go.RunAsync(args, Ct);

        Assert.True(code == 0, $"Go's tlog-verify refused what Har.Audit produced (exit {code}):\n{output}");
        Assert.Contains($"{GoTlogVerifierFixture.Sizes[^1]} entries: frames, CRC-32C, indexes and hash chain", output, StringComparison.Ordinal);
        Assert.Equal(GoTlogVerifierFixture.Sizes.Length + 1, Count(output, "ok   log ", "is the root signed by checkpoint")); // every checkpoint and the export's own
        Assert.Equal(go.Bundles.Count, Count(output, "ok   bundle ", "tlog.CheckRecord"));
        Assert.Equal(go.Bundles.Count, Count(output, "ok   bundle ", "equals tlog.ProveRecord"));
        Assert.Equal(go.Consistency.Count, Count(output, "ok   consistency ", "tlog.CheckTree"));
        Assert.Equal(go.Consistency.Count, Count(output, "ok   consistency ", "equals tlog.ProveTree"));
        Assert.DoesNotContain("FAIL", output, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Go_VerifiesTheEmptyLogCheckpoint_WithTheRfc6962EmptyRoot()
    {
        go.Require();
        var dir = Path.Combine(go.Dir.Path, "empty");
        using var key = AuditSigningKey.Generate("audit.example.com/empty");
        using (var log = AuditLog.Open(new AuditLogOptions { Directory = dir, Origin = "audit.example.com/empty", EnableMetrics = false }))
        {
            var checkpoint = log.CreateCheckpoint(key);
            Assert.Equal(SHA256.HashData([]), checkpoint.RootHash.ToArray()); // RFC 6962: SHA-256 of nothing (tlog itself uses zeros)
        }

        var (code, output) = await go.RunAsync(["-vkey", key.VerifierKey, "-log", dir], Ct);

        Assert.True(code == 0, $"exit {code}:\n{output}");
        Assert.Contains("the tree root at size 0 (tlog.TreeHash) is the root signed by checkpoint", output, StringComparison.Ordinal);
    }

    /// <summary>Each tampered copy must fail in Go, for the reason named (so it is not refused by accident).</summary>
    [Theory]
    [InlineData("checkpoint-size-edited", "invalid signature for key")]
    [InlineData("checkpoint-root-edited", "invalid signature for key")]
    [InlineData("checkpoint-origin-edited", "invalid signature for key")]
    [InlineData("checkpoint-extension-line-added", "invalid signature for key")]
    [InlineData("checkpoint-signature-byte-flipped", "invalid signature for key")]
    [InlineData("checkpoint-key-id-flipped", "note has no verifiable signatures")]
    [InlineData("checkpoint-signer-renamed", "note has no verifiable signatures")]
    [InlineData("checkpoint-blank-line-removed", "malformed note")]
    [InlineData("vkey-other-key-same-name", "note has no verifiable signatures")]
    [InlineData("vkey-same-key-other-name", "note has no verifiable signatures")]
    [InlineData("vkey-wrong-key-id", "invalid verifier hash")]
    [InlineData("bundle-path-node-flipped", "tlog.CheckRecord")]
    [InlineData("bundle-path-node-dropped", "tlog.CheckRecord")]
    [InlineData("bundle-entry-edited", "tlog.CheckRecord")]
    [InlineData("bundle-moved-to-the-next-index", "tlog.CheckRecord")]
    [InlineData("bundle-checkpoint-of-a-smaller-size", "tlog.CheckRecord")]
    [InlineData("consistency-path-node-flipped", "tlog.CheckTree")]
    [InlineData("consistency-old-root-flipped", "tlog.CheckTree")]
    [InlineData("consistency-to-an-unsigned-size", "signed by no checkpoint")]
    [InlineData("consistency-without-checkpoints", "signed by no checkpoint")]
    [InlineData("log-last-entry-edited", "the tree root at size 1025 (tlog.TreeHash) is")]
    [InlineData("log-middle-entry-edited", "is not the leaf hash of entry 512")]
    [InlineData("log-frame-crc-wrong", "CRC-32C")]
    [InlineData("log-last-entry-cut", "commits to 1025 entries, the log holds 1024")]
    [InlineData("log-origin-changed", "its checkpoint names origin")]
    public async Task Go_RefusesATamperedCopy(string tamper, string reason)
    {
        go.Require();
        var dir = Path.Combine(go.Dir.Path, "tampered", tamper);
        Directory.CreateDirectory(dir);

        var args = await TamperAsync(tamper, dir);
        var (code, output) = await go.RunAsync(args, Ct);

        Assert.True(code == 1, $"Go's tlog-verify accepted the tampered copy '{tamper}' (exit {code}):\n{output}");
        Assert.True(
            output.Split('\n').Any(l => l.StartsWith("FAIL ", StringComparison.Ordinal) && l.Contains(reason, StringComparison.Ordinal)),
            $"'{tamper}' failed, but not with '{reason}':\n{output}");
    }

    /// <summary>
    /// C2SP signed-note: a note MUST NOT contain ASCII control characters other than newline, and Go's note.Open refuses
    /// one that does ("malformed note"). Har must either refuse such an origin or sign a note Go opens. Fails while
    /// AuditLog.Open and SignedCheckpoint.Create accept an origin with a tab, CR or other control character inside it.
    /// </summary>
    [Theory]
    [InlineData("audit.example.com/a\tb")]
    [InlineData("audit.example.com/a\rb")]
    [InlineData("audit.example.com/a\u0001b")]
    [InlineData("audit.example.com/a\u001b[0mb")]
    public async Task Origin_WithAnAsciiControlCharacter_IsRefusedOrSignedAsANoteGoOpens(string origin)
    {
        go.Require();
        var dir = Path.Combine(go.Dir.Path, "origin-" + Guid.NewGuid().ToString("N"));
        using var key = AuditSigningKey.Generate("audit.example.com/har");
        AuditLog log;
        try
        {
            log = AuditLog.Open(new AuditLogOptions { Directory = dir, Origin = origin, EnableMetrics = false });
        }
        catch (Exception ex) when (ex is ArgumentException or FormatException)
        {
            return; // refused: conforms
        }

        using (log)
        {
            await log.AppendAsync(Samples.Event(0), Ct);
            try
            {
                log.CreateCheckpoint(key);
            }
            catch (Exception ex) when (ex is ArgumentException or FormatException or InvalidOperationException)
            {
                return; // refused: conforms
            }
        }

        var (code, output) = await go.RunAsync(["-vkey", key.VerifierKey, "-log", dir], Ct);

        Assert.True(code == 0, $"Har accepted origin {System.Text.Json.JsonSerializer.Serialize(origin)} and signed a checkpoint that Go's note.Open refuses (signed-note: no ASCII control characters but newline):\n{output}");
    }

    /// <summary>
    /// Notes Go refuses must not verify in Har either: a control character in the text (signed-note: MUST NOT), a root
    /// hash line that is not the base64 encoding (whitespace inside it: .NET's Convert.FromBase64String skips it, Go's
    /// base64 does not), and a failing signature by the trusted key beside a valid one (signed-note: clients SHOULD then
    /// reject the whole note; note.Open does). Fails while SignedCheckpoint.Parse/Verify accept them.
    /// </summary>
    [Theory]
    [InlineData("control-character-in-the-text")]
    [InlineData("whitespace-inside-the-root-hash")]
    [InlineData("failing-signature-by-the-trusted-key-beside-a-valid-one")]
    public async Task SignedCheckpoint_RefusesANoteGoRefuses(string variant)
    {
        go.Require();
        using var key = AuditSigningKey.Generate("audit.example.com/har");
        var root = Convert.ToBase64String(SHA256.HashData("root"u8));
        string Sign(string body) =>
            $"{body}\n\u2014 {key.Name} {Convert.ToBase64String(key.SignNoteBlob(Encoding.UTF8.GetBytes(body)))}\n";
        var note = variant switch
        {
            "control-character-in-the-text" => Sign($"audit.example.com/a\tb\n5\n{root}\n"),
            "whitespace-inside-the-root-hash" => Sign($"audit.example.com/har\n5\n{root[..8]} {root[8..]}\n"),
            _ => BadThenGood(Sign($"audit.example.com/har\n5\n{root}\n")),
        };
        var file = Path.Combine(go.Dir.Path, $"note-{variant}-{Guid.NewGuid():N}");
        await File.WriteAllTextAsync(file, note, Ct);

        var (code, output) = await go.RunAsync(["-vkey", key.VerifierKey, "-checkpoint", file], Ct);
        Assert.True(code == 1, $"Go accepted the '{variant}' note, so it proves nothing here:\n{output}");

        bool verifies;
        try
        {
            verifies = SignedCheckpoint.Parse(note).Verify(key.ToVerifierKey());
        }
        catch (FormatException)
        {
            verifies = false;
        }

        Assert.False(verifies, $"Har's SignedCheckpoint verifies a note Go refuses ('{variant}'):\n{output}");

        static string BadThenGood(string signed)
        {
            var split = signed.LastIndexOf("\n\n", StringComparison.Ordinal) + 2;
            var good = signed[split..].TrimEnd('\n');
            return signed[..split] + FlipSignatureByte(good, 20) + "\n" + good + "\n";
        }
    }

    private async Task<List<string>> TamperAsync(string tamper, string dir)
    {
        const long Last = 1025;
        var vkey = go.VerifierKeyFile;
        var note = await File.ReadAllTextAsync(go.Checkpoints[9], Ct);
        string Write(string name, string text)
        {
            var path = Path.Combine(dir, name);
            File.WriteAllText(path, text);
            return path;
        }

        List<string> Checkpoint(string text) => ["-vkey", vkey, "-checkpoint", Write("checkpoint.note", text)];
        List<string> Bundle(Action<JsonObject> edit)
        {
            var bundle = JsonNode.Parse(File.ReadAllText(go.BundleFile(Last, 512)))!.AsObject();
            edit(bundle);
            return ["-vkey", vkey, "-bundle", Write("bundle.json", bundle.ToJsonString())];
        }

        List<string> Consistency(Action<JsonObject> edit)
        {
            var proof = JsonNode.Parse(File.ReadAllText(go.ConsistencyFile(100, Last)))!.AsObject();
            edit(proof);
            return ["-vkey", vkey, "-checkpoint", go.Checkpoints[100], "-checkpoint", go.Checkpoints[Last], "-consistency", Write("consistency.json", proof.ToJsonString())];
        }

        string Log(Action<string> edit)
        {
            var copy = Path.Combine(dir, "log");
            Directory.CreateDirectory(copy);
            foreach (var f in Directory.GetFiles(go.Export))
            {
                File.Copy(f, Path.Combine(copy, Path.GetFileName(f)));
            }

            edit(copy);
            return copy;
        }

        var root = note.Split('\n')[2];
        var signed = note[..(note.LastIndexOf("\n\n", StringComparison.Ordinal) + 1)];
        var signatureLine = note.Split('\n')[^2];
        var key = go.VerifierKey;
        var publicKey = Convert.FromBase64String(key.Split('+', 3)[2]);
        switch (tamper)
        {
            case "checkpoint-size-edited":
                return Checkpoint(note.Replace("\n9\n", "\n8\n", StringComparison.Ordinal));
            case "checkpoint-root-edited":
                return Checkpoint(note.Replace(root, (root[0] == 'A' ? "B" : "A") + root[1..], StringComparison.Ordinal));
            case "checkpoint-origin-edited":
                return Checkpoint("audit.example.com/hax" + note["audit.example.com/har".Length..]);
            case "checkpoint-extension-line-added":
                return Checkpoint(signed + "extension\n" + note[signed.Length..]);
            case "checkpoint-signature-byte-flipped":
                return Checkpoint(signed + "\n" + FlipSignatureByte(signatureLine, 10) + "\n");
            case "checkpoint-key-id-flipped":
                return Checkpoint(signed + "\n" + FlipSignatureByte(signatureLine, 0) + "\n");
            case "checkpoint-signer-renamed":
                return Checkpoint(note.Replace("\u2014 audit.example.com/har ", "\u2014 audit.example.com/hax ", StringComparison.Ordinal));
            case "checkpoint-blank-line-removed":
                return Checkpoint(note.Replace("\n\n", "\n", StringComparison.Ordinal));
            case "vkey-other-key-same-name":
                using (var other = AuditSigningKey.Generate("audit.example.com/har"))
                {
                    return ["-vkey", other.VerifierKey, "-checkpoint", go.Checkpoints[9]];
                }

            case "vkey-same-key-other-name":
                // The same Ed25519 key under another name: a valid verifier key (its key ID recomputed), but not the signer.
                return ["-vkey", $"audit.example.com/hax+{KeyId("audit.example.com/hax", publicKey):x8}+{key.Split('+', 3)[2]}", "-checkpoint", go.Checkpoints[9]];
            case "vkey-wrong-key-id":
                return ["-vkey", $"audit.example.com/har+{KeyId("audit.example.com/har", publicKey) ^ 1:x8}+{key.Split('+', 3)[2]}", "-checkpoint", go.Checkpoints[9]];
            case "bundle-path-node-flipped":
                return Bundle(b => b["inclusion_path"]![3] = FlipHex((string)b["inclusion_path"]![3]!));
            case "bundle-path-node-dropped":
                return Bundle(b => b["inclusion_path"]!.AsArray().RemoveAt(0));
            case "bundle-entry-edited":
                return Bundle(b => ReplaceEntry(b, "\"actor\":\"actor-", "\"actor\":\"actxr-"));
            case "bundle-moved-to-the-next-index":
                return Bundle(b =>
                {
                    ReplaceEntry(b, "{\"index\":512,", "{\"index\":513,");
                    b["leaf_index"] = 513;
                });
            case "bundle-checkpoint-of-a-smaller-size":
                return Bundle(b =>
                {
                    b["checkpoint"] = File.ReadAllText(go.Checkpoints[100]);
                    b.Remove("tree_size");
                    b.Remove("root_hash");
                });
            case "consistency-path-node-flipped":
                return Consistency(p => p["path"]![1] = FlipHex((string)p["path"]![1]!));
            case "consistency-old-root-flipped":
                return Consistency(p => p["from_root"] = FlipHex((string)p["from_root"]!));
            case "consistency-to-an-unsigned-size":
                // tlog.CheckTree alone accepts this proof for size 1026 too: only a signed root binds the size.
                return Consistency(p => p["to_size"] = Last + 1);
            case "consistency-without-checkpoints":
                return ["-vkey", vkey, "-consistency", go.ConsistencyFile(100, Last)];
            case "log-last-entry-edited":
                return ["-vkey", vkey, "-log", Log(d => EditEntry(d, Last - 1, fixCrc: true))];
            case "log-middle-entry-edited":
                return ["-vkey", vkey, "-log", Log(d => EditEntry(d, 512, fixCrc: true))];
            case "log-frame-crc-wrong":
                return ["-vkey", vkey, "-log", Log(d => EditEntry(d, 512, fixCrc: false))];
            case "log-last-entry-cut":
                return ["-vkey", vkey, "-log", Log(d =>
                {
                    var segment = Path.Combine(d, "entries.log");
                    var bytes = File.ReadAllBytes(segment);
                    File.WriteAllBytes(segment, bytes[..(int)Frames(bytes)[^1].Offset]);
                })];
            case "log-origin-changed":
                return ["-vkey", vkey, "-log", Log(d => File.WriteAllText(Path.Combine(d, "log.json"), "{\"format\":\"har-audit-log/v1\",\"origin\":\"audit.example.com/hax\"}"))];
            default:
                throw new ArgumentOutOfRangeException(nameof(tamper), tamper, "unknown tamper case");
        }
    }

    private static int Count(string output, string prefix, string text) =>
        output.Split('\n').Count(l => l.StartsWith(prefix, StringComparison.Ordinal) && l.Contains(text, StringComparison.Ordinal));

    private static string FlipHex(string hex) => (hex[0] == '0' ? "1" : "0") + hex[1..];

    private static string FlipSignatureByte(string signatureLine, int at)
    {
        var parts = signatureLine.Split(' ');
        var blob = Convert.FromBase64String(parts[2]);
        blob[at] ^= 1;
        return $"{parts[0]} {parts[1]} {Convert.ToBase64String(blob)}";
    }

    /// <summary>The C2SP key ID: the first 4 bytes of SHA-256(name ‖ 0x0A ‖ 0x01 ‖ public key); <paramref name="typedKey"/> is 0x01 ‖ key.</summary>
    private static uint KeyId(string name, byte[] typedKey) =>
        BinaryPrimitives.ReadUInt32BigEndian(SHA256.HashData([.. Encoding.UTF8.GetBytes(name + "\n"), .. typedKey]));

    private static void ReplaceEntry(JsonObject bundle, string from, string to)
    {
        var entry = Encoding.UTF8.GetString(Convert.FromBase64String((string)bundle["entry"]!));
        Assert.Contains(from, entry, StringComparison.Ordinal);
        entry = entry.Replace(from, to, StringComparison.Ordinal);
        bundle["entry"] = Convert.ToBase64String(Encoding.UTF8.GetBytes(entry));
        bundle["entry_json"] = JsonNode.Parse(entry); // kept equal to the entry, so the proof itself is what fails
        bundle.Remove("leaf_hash");
    }

    private static List<(long Offset, int Length)> Frames(byte[] segment)
    {
        var frames = new List<(long, int)>();
        for (var pos = 8; pos < segment.Length;)
        {
            var length = (int)BinaryPrimitives.ReadUInt32LittleEndian(segment.AsSpan(pos));
            frames.Add((pos, length));
            pos += 8 + length;
        }

        return frames;
    }

    /// <summary>Changes one byte of an entry's actor (a valid entry still), with or without a matching frame CRC.</summary>
    private static void EditEntry(string log, long index, bool fixCrc)
    {
        var path = Path.Combine(log, "entries.log");
        var segment = File.ReadAllBytes(path);
        var (offset, length) = Frames(segment)[(int)index];
        var payload = segment.AsSpan((int)offset + 8, length);
        var at = payload.IndexOf("\"actor\":\"actor-"u8);
        Assert.True(at >= 0, $"entry {index} has no actor to edit");
        payload[at + 12] = (byte)'x';
        if (fixCrc)
        {
            BinaryPrimitives.WriteUInt32LittleEndian(segment.AsSpan((int)offset + 4), Crc32C.Compute(segment.AsSpan((int)offset, 4), payload));
        }

        File.WriteAllBytes(path, segment);
    }
}

/// <summary>
/// Builds Go's verifier (tests/external/tlog-verify, GOPATH mode: the standard library and golang.org/x/mod only) and a
/// log with checkpoints, proof bundles and consistency proofs once for <see cref="GoTlogVerifierTests"/>.
/// </summary>
public sealed class GoTlogVerifierFixture : IAsyncLifetime
{
    /// <summary>The checkpoint sizes: powers of two and their neighbours, and larger trees.</summary>
    public static readonly long[] Sizes = [1, 2, 3, 7, 8, 9, 100, 1025];

    private static readonly TimeSpan BuildTimeout = TimeSpan.FromMinutes(3);
    private static readonly TimeSpan RunTimeout = TimeSpan.FromSeconds(60);
    private string? _unavailable;
    private string? _buildError;

    internal TempDir Dir { get; } = new();

    public string VerifierKeyFile => Dir.Combine("vkey");

    public string VerifierKey { get; private set; } = string.Empty;

    public string Export => Dir.Combine("export");

    public Dictionary<long, string> Checkpoints { get; } = [];

    public List<string> Bundles { get; } = [];

    public List<string> Consistency { get; } = [];

    private string Binary => Dir.Combine("tlog-verify");

    public string BundleFile(long size, long index) => Dir.Combine($"bundle-{size}-{index}.json");

    public string ConsistencyFile(long from, long to) => Dir.Combine($"consistency-{from}-{to}.json");

    public async ValueTask InitializeAsync()
    {
        var go = FindOnPath("go");
        var gopath = FindGoPath();
        if (go is null || gopath is null)
        {
            _unavailable = go is null
                ? "Skipped: Go is not installed (no 'go' on PATH); .ci/steps/30-go.sh installs it (apt-get install golang-go golang-golang-x-mod-dev)."
                : "Skipped: golang.org/x/mod is not in any GOPATH (GOPATH, or the Debian package's /usr/share/gocode); .ci/steps/30-go.sh installs it (apt-get install golang-golang-x-mod-dev).";
            return;
        }

        var source = Path.Combine(TestPaths.RepoRoot, "tests", "external", "tlog-verify");
        var (code, output) = await RunProcessAsync(go, ["build", "-o", Binary, "."], source, GoEnvironment(gopath), BuildTimeout, TestContext.Current.CancellationToken);
        if (code != 0)
        {
            _buildError = $"go build of {source} failed (exit {code}):\n{output}";
            return;
        }

        await BuildLogAsync();
    }

    public ValueTask DisposeAsync()
    {
        Dir.Dispose();
        return ValueTask.CompletedTask;
    }

    /// <summary>Skips the test when Go or x/mod is missing; fails it when the verifier did not build.</summary>
    public void Require()
    {
        if (_unavailable is not null)
        {
            Assert.Skip(_unavailable);
        }

        Assert.True(_buildError is null, _buildError);
    }

    /// <summary>Runs the verifier with a bounded time; returns its exit code and output.</summary>
    public Task<(int ExitCode, string Output)> RunAsync(IEnumerable<string> arguments, CancellationToken ct) =>
        RunProcessAsync(Binary, arguments, Dir.Path, [], RunTimeout, ct);

    private async Task BuildLogAsync()
    {
        using var key = AuditSigningKey.Generate("audit.example.com/har");
        VerifierKey = key.VerifierKey;
        await File.WriteAllTextAsync(VerifierKeyFile, key.VerifierKey + "\n", TestContext.Current.CancellationToken);
        using var log = AuditLog.Open(new AuditLogOptions { Directory = Dir.Combine("log"), Origin = "audit.example.com/har", EnableMetrics = false });
        AuditRecord[] firsts =
        [
            DeploymentRecord.Parse(Encoding.UTF8.GetBytes(Samples.ReferenceDeploymentJson)),
            RollbackRecord.Parse(Encoding.UTF8.GetBytes(Samples.RollbackJson)),
        ];
        var count = 0;
        foreach (var size in Sizes)
        {
            while (count < size)
            {
                // Appends in flight together (group commit), in index order within the batch as the log assigns them.
                var batch = Enumerable.Range(count, (int)Math.Min(64, size - count))
                    .Select(i => log.AppendAsync(i < firsts.Length ? firsts[i] : Samples.Event(i), TestContext.Current.CancellationToken))
                    .ToArray();
                await Task.WhenAll(batch);
                count += batch.Length;
            }

            var checkpoint = log.CreateCheckpoint(key);
            Checkpoints[size] = Dir.Combine($"checkpoint-{size}.note");
            await File.WriteAllTextAsync(Checkpoints[size], checkpoint.NoteText, TestContext.Current.CancellationToken);
            var indexes = size <= 9 ? Enumerable.Range(0, (int)size).Select(i => (long)i) : [0, 1, size / 2, size - 2, size - 1];
            foreach (var index in indexes)
            {
                await File.WriteAllTextAsync(BundleFile(size, index), log.ExportProof(index).ToJson(), TestContext.Current.CancellationToken);
                Bundles.Add(BundleFile(size, index));
            }
        }

        foreach (var from in Sizes)
        {
            foreach (var to in Sizes.Where(s => s >= from))
            {
                await File.WriteAllTextAsync(ConsistencyFile(from, to), log.GetConsistencyProof(from, to).ToJson(), TestContext.Current.CancellationToken);
                Consistency.Add(ConsistencyFile(from, to));
            }
        }

        log.ExportTo(Export);
    }

    private static Dictionary<string, string?> GoEnvironment(string gopath) => new()
    {
        ["GO111MODULE"] = "off",
        ["GOPATH"] = gopath,
        ["GOFLAGS"] = null,
        ["CGO_ENABLED"] = "0",
        ["GOTOOLCHAIN"] = "local",
        ["GOCACHE"] = Environment.GetEnvironmentVariable("GOCACHE") is { Length: > 0 } cache ? cache : Path.Combine(Path.GetTempPath(), "har-go-build-cache"),
    };

    private static string? FindOnPath(string name) =>
        (Environment.GetEnvironmentVariable("PATH") ?? string.Empty).Split(Path.PathSeparator, StringSplitOptions.RemoveEmptyEntries)
            .Select(d => Path.Combine(d, name))
            .FirstOrDefault(File.Exists);

    /// <summary>The GOPATH holding golang.org/x/mod's sumdb sources: one of $GOPATH's, or where Debian's golang-golang-x-mod-dev puts them.</summary>
    private static string? FindGoPath() =>
        (Environment.GetEnvironmentVariable("GOPATH") ?? string.Empty).Split(Path.PathSeparator, StringSplitOptions.RemoveEmptyEntries)
            .Append("/usr/share/gocode")
            .FirstOrDefault(d => File.Exists(Path.Combine(d, "src", "golang.org", "x", "mod", "sumdb", "note", "note.go"))
                && File.Exists(Path.Combine(d, "src", "golang.org", "x", "mod", "sumdb", "tlog", "tlog.go")));

    private static async Task<(int ExitCode, string Output)> RunProcessAsync(
        string file, IEnumerable<string> arguments, string workingDirectory, Dictionary<string, string?> environment, TimeSpan timeout, CancellationToken ct)
    {
        var info = new ProcessStartInfo(file) { WorkingDirectory = workingDirectory, RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var a in arguments)
        {
            info.ArgumentList.Add(a);
        }

        foreach (var (name, value) in environment)
        {
            if (value is null)
            {
                info.Environment.Remove(name);
            }
            else
            {
                info.Environment[name] = value;
            }
        }

        using var process = Process.Start(info) ?? throw new InvalidOperationException($"Could not start {file}.");
        var stdout = process.StandardOutput.ReadToEndAsync(ct);
        var stderr = process.StandardError.ReadToEndAsync(ct);
        using var limit = CancellationTokenSource.CreateLinkedTokenSource(ct);
        limit.CancelAfter(timeout);
        try
        {
            await process.WaitForExitAsync(limit.Token);
        }
        catch (OperationCanceledException)
        {
            process.Kill(entireProcessTree: true);
            throw new TimeoutException($"{Path.GetFileName(file)} {string.Join(' ', info.ArgumentList)} did not finish within {timeout.TotalSeconds} s.");
        }

        return (process.ExitCode, await stdout + await stderr);
    }
}
