using Har.Audit;

namespace Har.Cli.Tests.Commands;

/// <summary><c>har rollout</c> against a real registry and audit log: rollback to a chosen version with an incident report, completed later.</summary>
[Collection(ConsoleTests.Name)]
public sealed class RolloutCommandsTests : IDisposable
{
    private readonly string _root = Directory.CreateTempSubdirectory("har-cli-rollout-").FullName;

    public void Dispose() => Directory.Delete(_root, recursive: true);

    [Fact]
    public async Task RollbackTo_OlderVersion_SixStepsAndIncidentCompletedAfterwards()
    {
        var registry = Path.Combine(_root, "registry");
        var third = Path.Combine(_root, "tiny-logits-1.2.0.onnx");
        await File.WriteAllBytesAsync(third, OnnxModelEditor.WithKey(await File.ReadAllBytesAsync(DemoFixtures.FixtureModel("tiny-logits-1.1.0.onnx")), "har.model_version", "1.2.0"));
        foreach (var model in new[] { DemoFixtures.FixtureModel("tiny-probs-1.0.0.onnx"), DemoFixtures.FixtureModel("tiny-logits-1.1.0.onnx"), third })
        {
            await RunOkAsync("models", "register", model, "--registry", registry);
        }

        await RunOkAsync("rollout", "start", "--registry", registry, "--candidate", "1.1.0", "--strategy", "recreate");
        await RunOkAsync("rollout", "start", "--registry", registry, "--candidate", "1.2.0", "--strategy", "canary");

        var (code, _, error) = await ConsoleCapture.RunAsync("rollout", "rollback", "--registry", registry, "--to", "1.2.0");
        Assert.Equal(3, code);
        Assert.Contains("not earlier than the candidate", error, StringComparison.Ordinal);

        var output = await RunOkAsync("rollout", "rollback", "--registry", registry, "--to", "1.0.0", "--actor", "oncall", "--reason", "shared bug", "--summary", "stairs misclassified");
        Assert.Contains("RolledBack", output, StringComparison.Ordinal);
        Assert.Contains("incident  incident-", output, StringComparison.Ordinal);
        Assert.Contains("1.0.0", await RunOkAsync("models", "list", "--registry", registry), StringComparison.Ordinal);

        await RunOkAsync("rollout", "incident", "--registry", registry, "--actor", "lead", "--cause", "label order", "--actions", "retrain");

        using var log = AuditLog.Open(new AuditLogOptions { Directory = Path.Combine(registry, ".audit"), EnableMetrics = false });
        var steps = log.Query(new AuditQuery { EventType = "rollout.rollback.step", PageSize = 100 }).Entries.Select(e => ((AuditEvent)e.Record).ActionDetails.GetProperty("name").GetString()).ToList();
        Assert.Equal(["detect", "identify", "verify", "execute"], steps);
        var report = ((AuditEvent)log.Query(new AuditQuery { EventType = "rollout.incident", PageSize = 100 }).Entries[^1].Record).ActionDetails;
        Assert.Equal(("stairs misclassified", "label order", "retrain", "1.0.0"), (report.GetProperty("summary").GetString(), report.GetProperty("cause").GetString(), report.GetProperty("actions").GetString(), report.GetProperty("to").GetString()));
    }

    [Theory]
    [InlineData(null, "shadow 100%")]
    [InlineData("0", "shadow 0%")]
    [InlineData("25", "shadow 25%")]
    public async Task Start_Canary_ShadowsTheChampionsWindowsUnlessToldOtherwise(string? percent, string expected)
    {
        var registry = await TwoVersionsAsync();
        string[] args = ["rollout", "start", "--registry", registry, "--candidate", "1.1.0", "--strategy", "canary"];
        var stdout = await RunOkAsync(percent is null ? args : [.. args, "--canary-shadow", percent]);
        Assert.Contains("candidate 10%, " + expected, stdout, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Start_CandidateThatCannotLoad_EndsFailedWithExitCode1AndTheReason()
    {
        // Registered (its card is well formed and fits the graph's shapes), but its graph returns logits under a card
        // that says probabilities: the load refuses it, the rollout ends Failed on the champion. Was exit code 0.
        var registry = await TwoVersionsAsync();
        var mislabelled = Path.Combine(_root, "logits-as-probabilities-1.2.0.onnx");
        var bytes = await File.ReadAllBytesAsync(DemoFixtures.FixtureModel("tiny-logits-1.1.0.onnx"));
        await File.WriteAllBytesAsync(mislabelled, OnnxModelEditor.WithKey(OnnxModelEditor.WithKey(bytes, "har.output", "probabilities"), "har.model_version", "1.2.0"));
        await RunOkAsync("models", "register", mislabelled, "--registry", registry);

        var (code, stdout, stderr) = await ConsoleCapture.RunAsync("rollout", "start", "--registry", registry, "--candidate", "1.2.0", "--strategy", "recreate");

        Assert.True(code == 1, $"exit {code}: {stderr}{stdout}");
        Assert.Contains("Failed", stdout, StringComparison.Ordinal);
        Assert.Contains("says 'probabilities', but on probe window", stdout, StringComparison.Ordinal);
        Assert.Contains("1.0.0", await RunOkAsync("models", "list", "--registry", registry), StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("--min-accuracy", "95")] // a percent where a fraction is expected: was the library's two-line message naming MinCandidateAccuracy
    [InlineData("--min-macro-f1", "-0.1")]
    [InlineData("--min-accuracy", "NaN")]
    public async Task Start_ComplianceMinimumOutOfRange_RefusedNamingTheOption(string option, string value)
    {
        var registry = await TwoVersionsAsync();
        var (code, stdout, stderr) = await ConsoleCapture.RunAsync("rollout", "start", "--registry", registry, "--candidate", "1.1.0", option, value);
        Assert.Equal(2, code);
        Assert.Empty(stdout);
        Assert.StartsWith($"har: {option} is {value}; expected a finite number from 0 to 1: a fraction", stderr, StringComparison.Ordinal);
        Assert.Single(stderr.TrimEnd().Split('\n'));
        Assert.DoesNotContain("MinCandidate", stderr, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("150")]
    [InlineData("-1")]
    public async Task Start_CanaryShadowOutOfRange_RefusedWithWhatIsExpected(string percent)
    {
        var registry = await TwoVersionsAsync();
        var (code, stdout, stderr) = await ConsoleCapture.RunAsync("rollout", "start", "--registry", registry, "--candidate", "1.1.0", "--canary-shadow", percent);
        Assert.Equal(2, code); // a parse error: a usage mistake (it was exit code 1, with the full help on stdout)
        Assert.Empty(stdout);
        Assert.StartsWith("har: --canary-shadow is", stderr, StringComparison.Ordinal);
        Assert.Contains("expected a percent from 0 to 100", stderr, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("status")]
    [InlineData("start", "--candidate", "1.1.0")]
    [InlineData("abort")]
    [InlineData("approve")]
    [InlineData("simulate", "--data", "no-such-data")] // refused before the data is looked for
    public async Task Command_RegistryThatDoesNotExist_ExitCode2AndNothingCreated(params string[] command)
    {
        // 'rollout status --registry typo3' printed "no rollout yet" (exit code 0) and created the folder; start and the
        // steering commands created it and a new audit log in it before failing.
        var typo = Path.Combine(_root, "typo3");

        var (code, stdout, stderr) = await ConsoleCapture.RunAsync(["rollout", .. command, "--registry", typo]);

        Assert.Equal(2, code);
        Assert.Empty(stdout);
        Assert.Equal($"har: No registry at '{typo}'; 'har models register <model.onnx> --registry <dir>' creates one.", stderr.TrimEnd());
        Assert.False(Directory.Exists(typo));
    }

    [Theory]
    [InlineData("start", "--candidate", "1.1.0")]
    [InlineData("pause")]
    public async Task Command_AuditLogThatDoesNotExist_ExitCode2AndNoLogCreated(params string[] command)
    {
        var registry = await TwoVersionsAsync();
        var typo = Path.Combine(_root, "typo-audit");

        var (code, _, stderr) = await ConsoleCapture.RunAsync(["rollout", .. command, "--registry", registry, "--audit", typo]);

        Assert.Equal(2, code);
        Assert.StartsWith($"har: No audit log at '{typo}'", stderr, StringComparison.Ordinal);
        Assert.False(Directory.Exists(typo));
        Assert.Contains("no rollout yet", await RunOkAsync("rollout", "status", "--registry", registry), StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("simulate", "--runs", "0", "har: --runs is 0; expected 1 to 1,000: ")] // ran once
    [InlineData("simulate", "--runs", "-1", "har: --runs is -1; expected 1 to 1,000: ")] // ran once
    [InlineData("simulate", "--devices", "0", "har: --devices is 0; expected 1 to 100,000: ")] // refused only after the data was read and scored
    [InlineData("simulate", "--devices", "2147483647", "har: --devices is 2147483647; expected 1 to 100,000: ")] // an unhandled exception
    [InlineData("evaluate", "--runs", "0", "har: --runs is 0; expected 1 to 1,000: ")] // ran once
    [InlineData("evaluate", "--interval", "0", "har: --interval is 0; expected 1 to 3,600: ")] // ran with 1 s
    public async Task SimulateOrEvaluate_CountOutOfRange_ExitCode2WithTheRange(string command, string option, string value, string expected)
    {
        var (code, stdout, stderr) = await ConsoleCapture.RunAsync("rollout", command, option, value, "--data", Path.Combine(_root, "no-such-data"));

        Assert.Equal(2, code);
        Assert.Empty(stdout);
        Assert.StartsWith(expected, stderr, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Simulate_LessAccurateCandidate_RolledBackWithLabels_PromotedWithoutThemAndTold()
    {
        // Found from outside: 'rollout simulate' replayed the HAPT sessions without their labels and had no way to feed
        // any, so the accuracy gate never measured anything and a candidate 6 points less accurate was promoted.
        var hapt = TestPaths.RequireSharedData();
        var labelled = await RunOkAsync("rollout", "simulate", "--data", hapt, "--fault", "less-accurate", "--labels", "0.1", "--runs", "2", "--devices", "500");
        Assert.Contains("2 runs, fault less-accurate, labels 10 % after 00:01:00: promoted 0, rolled back 2", labelled, StringComparison.Ordinal);

        var unlabelled = await RunOkAsync("rollout", "simulate", "--data", hapt, "--fault", "less-accurate", "--runs", "2", "--devices", "500");
        Assert.Contains("2 runs, fault less-accurate: promoted 2, rolled back 0", unlabelled, StringComparison.Ordinal);
        Assert.Contains("note: without --labels a less accurate candidate", unlabelled, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("2", "har: --labels 2 is not a share; expected 0 to 1")]
    [InlineData("-0.1", "har: --labels -0.1 is not a share; expected 0 to 1")]
    public async Task Simulate_LabelShareOutOfRange_ExitCode2(string share, string expected)
    {
        var (code, stdout, stderr) = await ConsoleCapture.RunAsync("rollout", "simulate", "--labels", share, "--data", Path.Combine(_root, "no-such-data"));

        Assert.Equal(2, code);
        Assert.Empty(stdout);
        Assert.StartsWith(expected, stderr, StringComparison.Ordinal);
    }

    private async Task<string> TwoVersionsAsync()
    {
        var registry = Path.Combine(_root, "registry");
        foreach (var model in new[] { DemoFixtures.FixtureModel("tiny-probs-1.0.0.onnx"), DemoFixtures.FixtureModel("tiny-logits-1.1.0.onnx") })
        {
            await RunOkAsync("models", "register", model, "--registry", registry);
        }

        return registry;
    }

    private static async Task<string> RunOkAsync(params string[] args)
    {
        var (code, stdout, stderr) = await ConsoleCapture.RunAsync(args);
        Assert.True(code == 0, $"har {string.Join(' ', args)}: exit {code}: {stderr}{stdout}");
        return stdout;
    }

    [Fact]
    public async Task Status_Json_BeforeAnyRollout_IsJson()
    {
        // It printed the text line "no rollout yet; current version: 1.0.0" with --json: `| jq` failed on it.
        var registry = await TwoVersionsAsync();

        var stdout = await RunOkAsync("rollout", "status", "--registry", registry, "--json");

        using var json = System.Text.Json.JsonDocument.Parse(stdout);
        Assert.Equal(System.Text.Json.JsonValueKind.Null, json.RootElement.ValueKind);
    }

    [Theory]
    [InlineData("0")]
    [InlineData("-5")]
    public async Task Start_ApprovalsBelowOne_ParseErrorNamingTheOption(string approvals)
    {
        // It was "har: RequiredApprovals ('0') must be greater than or equal to '1'.", the library's options check,
        // reached after the registry and its audit log were opened.
        var (code, stdout, stderr) = await ConsoleCapture.RunAsync("rollout", "start", "--registry", Path.Combine(_root, "registry"), "--candidate", "1.1.0", "--approvals", approvals);

        Assert.Equal(2, code);
        Assert.Empty(stdout);
        Assert.StartsWith($"har: --approvals is {approvals}; expected 1 or more: ", stderr, StringComparison.Ordinal);
        Assert.False(Directory.Exists(Path.Combine(_root, "registry")));
    }

    [Fact]
    public async Task Start_BundledCandidateThatReadsContext_StartsBesideTheChampion()
    {
        // The bundled 1.2.0 reads the 200 frames before each window; the champion 1.0.0 reads none. `har rollout start
        // --candidate 1.2.0` was exit code 2: "… open it with ServingOptions.ContextFrames = 200 …", a setting no option
        // of har reaches.
        var registry = Path.Combine(_root, "registry");
        await RunOkAsync("models", "register", TestPaths.ChampionModel, "--registry", registry);
        await RunOkAsync("models", "register", TestPaths.CandidateModel, "--registry", registry);

        var stdout = await RunOkAsync("rollout", "start", "--registry", registry, "--candidate", "1.2.0", "--strategy", "canary");

        Assert.Contains("candidate 10%", stdout, StringComparison.Ordinal);
    }
}
