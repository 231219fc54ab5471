namespace Har.Cli.Tests.Commands;

/// <summary>
/// <c>har models list</c> and <c>verify</c> read a registry: a mistyped registry or audit path is exit code 2 and creates
/// nothing. Both exited 0 and created the folder; verify also created a new, empty audit log in it.
/// </summary>
[Collection(ConsoleTests.Name)]
public sealed class ModelsCommandsTests : IDisposable
{
    private readonly string _root = Directory.CreateTempSubdirectory("har-cli-models-").FullName;

    public void Dispose() => Directory.Delete(_root, recursive: true);

    [Theory]
    [InlineData("list")]
    [InlineData("verify")]
    public async Task ReadCommand_RegistryThatDoesNotExist_ExitCode2AndNothingCreated(string command)
    {
        var typo = Path.Combine(_root, "typo1");

        var (code, stdout, stderr) = await ConsoleCapture.RunAsync("models", command, "--registry", typo);

        Assert.Equal(2, code);
        Assert.Empty(stdout);
        Assert.Equal($"har: No registry at '{typo}'; 'har models register <model.onnx> --registry <dir>' creates one.", stderr.TrimEnd());
        Assert.False(Directory.Exists(typo));
    }

    [Fact]
    public async Task Verify_AuditLogThatDoesNotExist_ExitCode2AndNoLogCreated()
    {
        var registry = Path.Combine(_root, "registry");
        var (code, _, stderr) = await ConsoleCapture.RunAsync("models", "register", DemoFixtures.FixtureModel("tiny-probs-1.0.0.onnx"), "--registry", registry);
        Assert.True(code == 0, stderr);
        var typo = Path.Combine(_root, "typo2");

        (code, var stdout, stderr) = await ConsoleCapture.RunAsync("models", "verify", "--registry", registry, "--audit", typo);

        Assert.Equal(2, code);
        Assert.Empty(stdout);
        Assert.StartsWith($"har: No audit log at '{typo}' (entries.log is missing); pass --audit with the log the registry was registered through", stderr, StringComparison.Ordinal);
        Assert.False(Directory.Exists(typo));

        // A folder that is not a registry's: no '.audit' is made in it.
        var other = Directory.CreateDirectory(Path.Combine(_root, "not-a-registry")).FullName;
        (code, _, stderr) = await ConsoleCapture.RunAsync("models", "verify", "--registry", other);
        Assert.Equal(2, code);
        Assert.StartsWith($"har: No audit log at '{Path.Combine(other, ".audit")}'", stderr, StringComparison.Ordinal);
        Assert.Empty(Directory.EnumerateFileSystemEntries(other));
    }

    [Fact]
    public async Task ListAndVerify_RegisteredVersion_ExitCode0()
    {
        var registry = Path.Combine(_root, "registry");
        var (code, _, stderr) = await ConsoleCapture.RunAsync("models", "register", DemoFixtures.FixtureModel("tiny-probs-1.0.0.onnx"), "--registry", registry);
        Assert.True(code == 0, stderr);

        (code, var listed, stderr) = await ConsoleCapture.RunAsync("models", "list", "--registry", registry);
        Assert.True(code == 0, stderr);
        Assert.Contains("1.0.0", listed, StringComparison.Ordinal);
        (code, var verified, stderr) = await ConsoleCapture.RunAsync("models", "verify", "--registry", registry);
        Assert.True(code == 0, stderr);
        Assert.StartsWith("ok    1.0.0", verified, StringComparison.Ordinal);
    }

    [Fact]
    public async Task RetireListReinstate_RecordedInTheRegistrysLog_CurrentVersionRefusedWithExitCode2()
    {
        var registry = Path.Combine(_root, "registry");
        foreach (var model in new[] { "tiny-probs-1.0.0.onnx", "tiny-logits-1.1.0.onnx" })
        {
            var (registered, _, error) = await ConsoleCapture.RunAsync("models", "register", DemoFixtures.FixtureModel(model), "--registry", registry);
            Assert.True(registered == 0, error);
        }

        var (code, stdout, stderr) = await ConsoleCapture.RunAsync("models", "retire", "1.0.0", "--registry", registry, "--reason", "old", "--actor", "carol");
        Assert.Equal(2, code);
        Assert.Empty(stdout);
        Assert.Contains("1.0.0 was not retired: it is the current version", stderr, StringComparison.Ordinal);

        (code, stdout, stderr) = await ConsoleCapture.RunAsync("models", "retire", "v1.1.0", "--registry", registry, "--reason", "labels permuted", "--actor", "carol");
        Assert.True(code == 0, stderr);
        Assert.Matches(@"^retired: 1\.1\.0 was retired by carol at \S+ \S+ \(audit entry \d+\): labels permuted", stdout);

        (code, var listed, stderr) = await ConsoleCapture.RunAsync("models", "list", "--registry", registry);
        Assert.True(code == 0, stderr);
        var lines = listed.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.DoesNotContain("RETIRED", Assert.Single(lines, l => l.Contains(" 1.0.0 ", StringComparison.Ordinal)), StringComparison.Ordinal);
        Assert.Contains("RETIRED by carol", Assert.Single(lines, l => l.Contains(" 1.1.0 ", StringComparison.Ordinal)), StringComparison.Ordinal);

        (code, var json, stderr) = await ConsoleCapture.RunAsync("models", "list", "--registry", registry, "--json");
        Assert.True(code == 0, stderr);
        using (var doc = System.Text.Json.JsonDocument.Parse(json))
        {
            var versions = doc.RootElement.EnumerateArray().ToList();
            Assert.Equal(System.Text.Json.JsonValueKind.Null, versions.Single(v => v.GetProperty("version").GetString() == "1.0.0").GetProperty("retired").ValueKind);
            Assert.Equal("labels permuted", versions.Single(v => v.GetProperty("version").GetString() == "1.1.0").GetProperty("retired").GetProperty("reason").GetString());
        }

        (code, stdout, stderr) = await ConsoleCapture.RunAsync("models", "reinstate", "1.1.0", "--registry", registry, "--reason", "fixed");
        Assert.True(code == 0, stderr);
        Assert.StartsWith("reinstated 1.1.0", stdout, StringComparison.Ordinal);
        (code, listed, _) = await ConsoleCapture.RunAsync("models", "list", "--registry", registry);
        Assert.Equal(0, code);
        Assert.DoesNotContain("RETIRED", listed, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Verify_AuditLogHeldOpenByTheService_ReadsItAndPasses()
    {
        // It opened the log for writing, so it failed while the service held it ("already open", or "open in another process").
        var registry = Path.Combine(_root, "registry");
        var (code, _, stderr) = await ConsoleCapture.RunAsync("models", "register", DemoFixtures.FixtureModel("tiny-probs-1.0.0.onnx"), "--registry", registry);
        Assert.True(code == 0, stderr);
        using var owner = Har.Audit.AuditLog.Open(new Har.Audit.AuditLogOptions { Directory = Path.Combine(registry, ".audit"), EnableMetrics = false });

        (code, var verified, stderr) = await ConsoleCapture.RunAsync("models", "verify", "--registry", registry);

        Assert.True(code == 0, stderr);
        Assert.StartsWith("ok    1.0.0", verified, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Verify_ARegisteredVersionWhoseFolderWasDeleted_Fails()
    {
        // Found by fuzzing the CLI: with v1.1.0 deleted (or its record replaced), 1.1.0 silently left the output and
        // verify exited 0, although the audit log registered it.
        var registry = Path.Combine(_root, "registry");
        foreach (var model in new[] { "tiny-probs-1.0.0.onnx", "tiny-logits-1.1.0.onnx" })
        {
            var (registered, _, error) = await ConsoleCapture.RunAsync("models", "register", DemoFixtures.FixtureModel(model), "--registry", registry);
            Assert.True(registered == 0, error);
        }

        Directory.Delete(Path.Combine(registry, "v1.1.0"), recursive: true);
        var (code, verified, stderr) = await ConsoleCapture.RunAsync("models", "verify", "--registry", registry);

        Assert.True(code == 1, $"exit code {code}: {verified} {stderr}");
        Assert.StartsWith("ok    1.0.0", verified, StringComparison.Ordinal);
        Assert.Contains("FAIL  1.1.0: ", verified, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Register_ModelThatDoesNotExistOrIsAFolder_ExitCode2AndNoRegistryCreated()
    {
        // A mistyped model path said "Could not find file '…'" after creating the registry and an empty audit log.
        var registry = Path.Combine(_root, "registry");
        var typo = Path.Combine(_root, "har-cnn-bilstm-1.2.0.onxx");

        var (code, stdout, stderr) = await ConsoleCapture.RunAsync("models", "register", typo, "--registry", registry);

        Assert.Equal(2, code);
        Assert.Empty(stdout);
        Assert.Equal($"har: '{typo}' does not exist; expected the .onnx model file to register (e.g. models/har-cnn-bilstm-1.2.0.onnx).", stderr.TrimEnd());
        Assert.False(Directory.Exists(registry));

        // A folder was "Access to the path '…' is denied."
        (code, _, stderr) = await ConsoleCapture.RunAsync("models", "register", _root, "--registry", registry);
        Assert.Equal(2, code);
        Assert.Equal($"har: '{_root}' is a folder; expected the .onnx model file to register (e.g. models/har-cnn-bilstm-1.2.0.onnx).", stderr.TrimEnd());
        Assert.False(Directory.Exists(registry));
    }

    [Fact]
    public async Task Register_DevZero_ExitCode2WithoutReadingItForever()
    {
        // OnnxExternalData read /dev/zero (length 0) until the array limit: an OutOfMemoryException and a stack trace.
        Assert.SkipUnless(File.Exists("/dev/zero"), "No /dev/zero on this system.");

        var (code, stdout, stderr) = await ConsoleCapture.RunAsync("models", "register", "/dev/zero", "--registry", Path.Combine(_root, "registry"));

        Assert.Equal(2, code);
        Assert.Empty(stdout);
        Assert.StartsWith("har: 'zero' is not a loadable ONNX model", stderr, StringComparison.Ordinal);
        Assert.Single(stderr.TrimEnd().Split('\n'));
    }
}
