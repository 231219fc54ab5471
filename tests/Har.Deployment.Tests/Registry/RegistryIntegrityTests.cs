using Har.Audit;
using Har.Deployment.Tests.Support;

namespace Har.Deployment.Tests.Registry;

/// <summary>Issue 17 point 7: the audit log, not a neighbouring file, is the reference for a version's files.</summary>
public sealed class RegistryIntegrityTests : IDisposable
{
    private readonly AuditedRegistry _env = new();

    public void Dispose() => _env.Dispose();

    [Fact]
    public void Register_AnchorsAllThreeFilesInTheAuditLog()
    {
        var registered = Assert.Single(_env.Events("registry.registered"), e => e.ActionDetails.GetProperty("version").GetString() == "1.1.0");
        var model = _env.Registry.Get("1.1.0");
        Assert.Equal(model.Sha256, registered.ActionDetails.GetProperty("sha256").GetString());
        Assert.Equal(AuditHash.Sha256OfFile(model.ConfigPath), registered.ActionDetails.GetProperty("config_sha256").GetString());
        Assert.Equal(AuditHash.Sha256OfFile(model.DeploymentRecordPath), registered.ActionDetails.GetProperty("record_sha256").GetString());
        Assert.Equal(2, _env.Log.Query(new AuditQuery { Kind = AuditRecordKind.Deployment }).Entries.Count);
    }

    [Fact]
    public void Verify_ModelConfigAndRecordSwappedConsistently_RefusedEverywhereAndAudited()
    {
        var target = _env.Registry.Get("1.1.0");
        var impostor = AuditedRegistry.ImpostorOf("1.1.0");
        AuditedRegistry.SwapConsistently(target, impostor);

        // A fresh process: nothing in memory, only the files and the log.
        _env.Reopen();
        var registry = _env.Registry;

        // The three files agree with each other; the log does not.
        Assert.Equal(AuditHash.Sha256OfFile(target.ModelPath), registry.Get("1.1.0").Sha256);
        var verification = registry.Verify("1.1.0");
        Assert.False(verification.IsValid);
        Assert.Contains(verification.Problems, p => p.Contains("the audit log registered", StringComparison.Ordinal) && p.Contains("model.onnx", StringComparison.Ordinal));
        Assert.Contains(verification.Problems, p => p.Contains("config.json", StringComparison.Ordinal));
        Assert.Equal(target.Sha256, verification.ExpectedSha256);

        var load = Assert.Throws<ModelIntegrityException>(() => registry.ReadVerified("1.1.0", "serve"));
        Assert.Contains("1.1.0", load.Message, StringComparison.Ordinal);
        Assert.Throws<ModelIntegrityException>(() => registry.SetCurrent("1.1.0"));
        Assert.Equal("1.0.0", registry.CurrentVersion);

        var refusals = _env.Events("registry.refused").Select(e => e.ActionDetails.GetProperty("purpose").GetString()).ToList();
        Assert.Equal(["verify", "serve", "make current"], refusals);
        Assert.False(registry.GetVerification("1.1.0").IsValid);
    }

    [Fact]
    public async Task Promote_SwappedCandidate_RolloutFailsAndChampionKeepsServing()
    {
        AuditedRegistry.SwapConsistently(_env.Registry.Get("1.1.0"), AuditedRegistry.ImpostorOf("1.1.0"));
        var options = TestRegistry.Options(o => o.BuiltInStrategies.SmokeTest = false);
        await using var pipeline = ServingPipeline.Open(_env.Registry, TestRegistry.ServingOptions(), timeProvider: _env.Time);
        await using var controller = await RolloutController.OpenAsync(_env.Registry, pipeline, options, loggerFactory: null, timeProvider: _env.Time);
        var status = await controller.ExecuteAsync(RolloutCommand.Start("1.1.0", "recreate", "mallory", "swap"));

        Assert.Equal(RolloutPhase.Failed, status.Phase);
        Assert.Equal("1.0.0", _env.Registry.CurrentVersion);
        Assert.Contains(_env.Events("registry.refused"), e => e.ActionDetails.GetProperty("version").GetString() == "1.1.0");
    }

    [Fact]
    public async Task Promote_CandidateSwappedAfterItWasLoaded_NotMadeCurrentAndRefusalAudited()
    {
        await using var pipeline = ServingPipeline.Open(_env.Registry, TestRegistry.ServingOptions(), timeProvider: _env.Time);
        await using var controller = await RolloutController.OpenAsync(_env.Registry, pipeline, TestRegistry.Options(), loggerFactory: null, timeProvider: _env.Time);
        var started = await controller.ExecuteAsync(RolloutCommand.Start("1.1.0", "canary", "alice", "try the candidate"));
        Assert.False(started.Phase.IsTerminal(), started.Message);

        // The verified bytes are in memory; the files are swapped before the operator promotes.
        AuditedRegistry.SwapConsistently(_env.Registry.Get("1.1.0"), AuditedRegistry.ImpostorOf("1.1.0"));
        var promote = RolloutCommand.Create(RolloutCommandKind.Promote, "alice", "looks good");
        try
        {
            await controller.ExecuteAsync(promote);
        }
        catch (ModelIntegrityException)
        {
            // How the controller reports the refused promotion is the controller's business; the registry refused it.
        }

        Assert.Equal("1.0.0", _env.Registry.CurrentVersion);
        Assert.Contains(_env.Events("registry.refused"), e => e.ActionDetails.GetProperty("purpose").GetString() == "make current");
    }

    [Fact]
    public void Verify_FolderPlantedWithoutRegistration_RefusedAsUnanchored()
    {
        // A self-consistent version folder copied in by hand (or by another log's owner) is vouched for by nothing.
        var planted = Path.Combine(_env.RegistryRoot, "v1.2.0");
        Directory.CreateDirectory(planted);
        var bytes = AuditedRegistry.ImpostorOf("1.2.0");
        var template = _env.Registry.Get("1.1.0");
        File.Copy(template.DeploymentRecordPath, Path.Combine(planted, ModelRegistry.RecordFileName));
        var record = System.Text.Json.Nodes.JsonNode.Parse(File.ReadAllText(Path.Combine(planted, ModelRegistry.RecordFileName)))!;
        record["model"]!["version"] = "1.2.0";
        File.WriteAllText(Path.Combine(planted, ModelRegistry.RecordFileName), record.ToJsonString());
        File.WriteAllBytes(Path.Combine(planted, ModelRegistry.ModelFileName), bytes);
        AuditedRegistry.SwapConsistently(_env.Registry.Get("1.2.0"), bytes);

        var verification = _env.Registry.Verify("1.2.0");
        Assert.False(verification.IsValid);
        Assert.Contains(verification.Problems, p => p.Contains("no registration in the audit log", StringComparison.Ordinal));
        Assert.Throws<ModelIntegrityException>(() => _env.Registry.ReadVerified("1.2.0", "serve"));
    }

    [Fact]
    public void Verify_RecordEditedButHashKept_Refused()
    {
        var model = _env.Registry.Get("1.1.0");
        var text = File.ReadAllText(model.DeploymentRecordPath);
        File.WriteAllText(model.DeploymentRecordPath, text.Replace("\"alice\"", "\"mallory\"", StringComparison.Ordinal));
        _env.Reopen();

        var verification = _env.Registry.Verify("1.1.0");
        Assert.False(verification.IsValid);
        Assert.Contains(verification.Problems, p => p.Contains("deployment_record.json differs", StringComparison.Ordinal));
    }

    [Fact]
    public void Verify_UntouchedAfterReopen_ValidFromTheLogsAnchors()
    {
        _env.Reopen();
        var verification = _env.Registry.Verify("1.1.0");
        Assert.True(verification.IsValid, string.Join(" ", verification.Problems));
        Assert.Empty(_env.Events("registry.refused"));
    }

    [Fact]
    public void Problems_NeverNameThePathsOfThisMachine()
    {
        AuditedRegistry.SwapConsistently(_env.Registry.Get("1.1.0"), AuditedRegistry.ImpostorOf("1.1.0"));
        File.Delete(_env.Registry.Get("1.0.0").ConfigPath);
        foreach (var version in new[] { "1.0.0", "1.1.0" })
        {
            var verification = _env.Registry.Verify(version);
            Assert.False(verification.IsValid);
            Assert.All(verification.Problems, p => Assert.DoesNotContain(_env.Root, p, StringComparison.Ordinal));
        }

        var missing = Assert.Throws<KeyNotFoundException>(() => _env.Registry.Get("9.9.9"));
        Assert.DoesNotContain(_env.Root, missing.Message, StringComparison.Ordinal);
    }
}
