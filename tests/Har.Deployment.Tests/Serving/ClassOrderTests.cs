using System.Text.Json;
using Har.Deployment.Tests.Support;
using Har.Drift;
using Har.Inference;
using Har.Testing;

namespace Har.Deployment.Tests.Serving;

/// <summary>
/// Versions are compared by activity name, not class index. Found from outside: a candidate whose card listed its
/// labels in another order than its network's outputs (SITTING/STANDING and the two stair classes swapped, so the
/// service answered "STANDING" to every sitting user) agreed with the champion on 99 % of windows through the service
/// and was promoted; a correctly re-ordered model would have been rolled back. Both candidates here are the champion's
/// own network, so the truth is known without any model: with its card reversed it names every window wrongly; with its
/// outputs and its card reversed together it predicts exactly what the champion predicts.
/// </summary>
public sealed class ClassOrderTests : IDisposable
{
    private const string Mislabelled = "1.3.0";
    private const string Reordered = "1.4.0";
    private readonly TestRegistry _env = new(registerCandidate: false);

    public ClassOrderTests()
    {
        var champion = File.ReadAllBytes(TestRegistry.ChampionFile);
        var labels = ModelCard.Load(TestRegistry.ChampionFile).Labels;
        var reversed = labels.Reverse().ToArray();
        var order = Enumerable.Range(0, labels.Count).Reverse().ToArray();
        Register(OnnxModelEditor.Rewrite(champion, Card(Mislabelled, reversed), inputTimeDimension: null), Mislabelled);
        Register(OnnxModelEditor.Rewrite(OnnxModelEditor.WithOutputsPermuted(champion, order), Card(Reordered, reversed), inputTimeDimension: null), Reordered);
    }

    [Fact]
    public void Build_SameLabels_IsIdentity_OtherOrder_MapsByName_CaseInsensitive_UnknownPastTheTarget()
    {
        Assert.Null(ClassOrder.Build(["A", "B", "C"], ["a", "b", "c"]));
        Assert.Equal([2, 0, 1], ClassOrder.Build(["C", "A", "B"], ["A", "B", "C"])!);
        Assert.Equal([1, 3, 0, 4], ClassOrder.Build(["B", "X", "A", "Y"], ["A", "B", "C"])!);
        Assert.Equal(2, ClassOrder.Translate([1, 2, 0], 1));
        Assert.Equal(1, ClassOrder.Translate(null, 1));
        Assert.True(ClassOrder.Same(["A", "B"], 1, ["b", "a"], 0));
        Assert.False(ClassOrder.Same(["A", "B"], 1, ["A", "B"], 0));
        Assert.False(ClassOrder.Same(["A", "B"], 2, ["A", "B", "C"], 2));
    }

    [Theory]
    [InlineData(Mislabelled, 0.0)]
    [InlineData(Reordered, 1.0)]
    public async Task Canary_PairsAreComparedByActivityName(string candidate, double expectedAgreement)
    {
        await using var c = await _env.OpenAsync();
        await c.ExecuteAsync(RolloutCommand.Start(candidate, "canary", "alice", "label order"));
        var served = await ServeRandomDevicesAsync(300);
        var labels = ModelCard.Load(TestRegistry.ChampionFile).Labels;
        AnalysisSnapshot snapshot;
        var deadline = DateTime.UtcNow.AddSeconds(60);
        do
        {
            await Task.Delay(20);
            snapshot = c.Observations.TakeSnapshot(candidate, TestRegistry.Champion, _env.Time.GetUtcNow(), labels, reset: false);
        }
        while (snapshot.Paired.Pairs < 300 && DateTime.UtcNow < deadline);

        Assert.Equal(300, snapshot.Paired.Pairs);
        Assert.Equal(expectedAgreement, (double)snapshot.Paired.Agreements / snapshot.Paired.Pairs);

        // The class counts are in the champion's order: the re-ordered candidate's equal the champion's on the same windows.
        if (candidate == Reordered)
        {
            Assert.Equal(snapshot.Paired.StableClassCounts, snapshot.Paired.CandidateClassCounts);
        }

        // The answers callers got name each version's output by its own card: the candidate's class i is its card's label i.
        var candidateLabels = ModelCard.Load(_env.Registry.Get(candidate).ModelPath).Labels;
        var byCandidate = served.Where(s => s.ModelVersion == candidate).ToList();
        Assert.NotEmpty(byCandidate);
        Assert.All(byCandidate, s => Assert.Equal(candidateLabels[s.ClassIndex], s.Label));
        Assert.All(served.Where(s => s.ModelVersion == TestRegistry.Champion), s => Assert.Equal(labels[s.ClassIndex], s.Label));
    }

    [Theory]
    [InlineData(Mislabelled, RolloutPhase.RolledBack, false)]
    [InlineData(Reordered, RolloutPhase.Succeeded, false)]
    [InlineData(Mislabelled, RolloutPhase.RolledBack, true)]
    [InlineData(Reordered, RolloutPhase.Succeeded, true)]
    public async Task Canary_TheMislabelledCandidateRollsBack_TheReorderedOnePromotes(string candidate, RolloutPhase expected, bool knownWindows)
    {
        // With known windows the confidence and uncertain-rate gates count, judged per predicted class against each
        // version's figures on those windows, also counted in the champion's class order.
        await using var c = await _env.OpenAsync(TestRegistry.Options(o =>
        {
            foreach (var w in knownWindows ? RandomWindows(60, seed: 17) : [])
            {
                o.SmokeTestWindows.Add(w);
            }
        }));
        var s = await c.ExecuteAsync(RolloutCommand.Start(candidate, "canary", "alice", "label order"));
        for (var interval = 0; interval < 12 && s.Phase is RolloutPhase.Progressing; interval++)
        {
            var before = Scored(c, candidate);
            await ServeRandomDevicesAsync(300, seed: interval);
            await WaitForScoredAsync(c, candidate, before + 300);
            _env.Time.Advance(TimeSpan.FromMinutes(1));
            s = (await c.ReconcileAsync())!;
        }

        Assert.True(s.Phase == expected, $"{candidate}: {s.Phase} ({s.Message}); last analysis: {s.LastAnalysis}");
        if (expected == RolloutPhase.RolledBack && !knownWindows)
        {
            var verdict = _env.Audit.OfType("rollout.verdict").Select(e => e.Details.ToJsonString()).First(j => j.Contains("\"verdict\":\"Fail\"", StringComparison.Ordinal));
            Assert.Contains("agreement", verdict, StringComparison.Ordinal);
        }
    }

    [Fact]
    public async Task SmokeTest_WithKnownWindows_ComparesByActivityName()
    {
        var known = RandomWindows(40, seed: 11);
        foreach (var (candidate, passes) in new[] { (Mislabelled, false), (Reordered, true) })
        {
            using var env = new TestRegistry(registerCandidate: false);
            env.Registry.Register(_env.Registry.Get(candidate).ModelPath, new ModelRegistrationOptions { Deployer = "tester" });
            await using var c = await env.OpenAsync(TestRegistry.Options(o =>
            {
                foreach (var w in known)
                {
                    o.SmokeTestWindows.Add(w);
                }
            }));
            var s = await c.ExecuteAsync(RolloutCommand.Start(candidate, "canary", "alice", "smoke"));
            Assert.True((s.Phase != RolloutPhase.RolledBack) == passes, $"{candidate}: {s.Phase} ({s.Message})");
            if (!passes)
            {
                Assert.Contains("agrees with", env.Audit.Events.Select(e => e.Details.ToJsonString()).Last(j => j.Contains("smoke", StringComparison.OrdinalIgnoreCase) && j.Contains("agrees with", StringComparison.Ordinal)), StringComparison.Ordinal);
            }
        }
    }

    [Fact]
    public async Task OutputDrift_AVersionWithAnotherLabelOrder_IsPooledByActivityName()
    {
        // The profile's output reference is the champion's predictions on some windows, in the champion's label order.
        var (flat, predicted, profile) = await ChampionReferenceAsync(600, seed: 23);
        Assert.True(predicted.Distinct().Count() >= 2, "the champion predicts one class only on these windows: nothing to tell orders apart");

        // A registry whose current version is the champion's network with outputs and card reversed together: it predicts
        // exactly what the champion predicts, each class at the other end of its label list.
        using var env = new TestRegistry(registerCandidate: false);
        var registry = new ModelRegistry(Path.Combine(env.Root, "reordered"), timeProvider: env.Time);
        registry.Register(_env.Registry.Get(Reordered).ModelPath, new ModelRegistrationOptions { Deployer = "tester" });
        using var drift = new DeviceDriftMonitor(profile, new DriftMonitorOptions { MetricsRegistry = Prometheus.Metrics.NewCustomRegistry() }, env.Time);
        await using var pipeline = ServingPipeline.Open(registry, TestRegistry.ServingOptions(), drift, timeProvider: env.Time);
        await pipeline.PredictAsync(null, flat, new Prediction[predicted.Length]);

        var outputs = drift.ScoreOutputsNow()!;
        Assert.Equal(predicted.Length, outputs.Predictions);
        Assert.True(outputs.ClassMix!.Statistic < 1e-9, $"the same predictions by name pool to the reference's class mix: {outputs}");
    }

    [Fact]
    public async Task OutputDrift_AVersionWithAnActivityTheProfileLacks_CountsItAndLosesNoWindow()
    {
        // The champion's network with one activity renamed on its card, as a retrain that added RUNNING would answer it.
        // Before, each of its RUNNING answers threw in the drift monitor (an observer failure): the window was lost to
        // input and output drift alike.
        var (flat, predicted, profile) = await ChampionReferenceAsync(300, seed: 29);
        var renamed = predicted.GroupBy(c => c).OrderByDescending(g => g.Count()).First().Key;
        var expectedOther = predicted.Count(c => c == renamed);
        var labels = ModelCard.Load(TestRegistry.ChampionFile).Labels.ToArray();
        labels[renamed] = "RUNNING";

        using var env = new TestRegistry(registerCandidate: false);
        var path = Path.Combine(env.Root, "running.onnx");
        File.WriteAllBytes(path, OnnxModelEditor.Rewrite(File.ReadAllBytes(TestRegistry.ChampionFile), Card("1.5.0", labels), inputTimeDimension: null));
        var registry = new ModelRegistry(Path.Combine(env.Root, "running"), timeProvider: env.Time);
        registry.Register(path, new ModelRegistrationOptions { Deployer = "tester" });
        using var drift = new DeviceDriftMonitor(profile, new DriftMonitorOptions { MetricsRegistry = Prometheus.Metrics.NewCustomRegistry() }, env.Time);
        await using var pipeline = ServingPipeline.Open(registry, TestRegistry.ServingOptions(), drift, timeProvider: env.Time);
        var served = new Prediction[predicted.Length];
        await pipeline.PredictAsync(null, flat, served);

        Assert.Equal(expectedOther, served.Count(p => p.ClassIndex == renamed));
        var outputs = drift.ScoreOutputsNow()!;
        Assert.Equal(predicted.Length, outputs.Predictions);
        Assert.Equal(expectedOther, outputs.OtherActivityPredictions);
        Assert.True(outputs.ClassMix!.Statistic > 0.05, $"the renamed answers are a class the reference never predicted, not the class they were: {outputs}");
        Assert.Contains("of activities the profile lacks", outputs.ToString(), StringComparison.Ordinal);
    }

    public void Dispose() => _env.Dispose();

    /// <summary>Random windows, the champion's predictions on them, and a drift profile whose output reference is those predictions (in the champion's order).</summary>
    private static async Task<(float[] Flat, int[] Predicted, ReferenceProfile Profile)> ChampionReferenceAsync(int count, int seed)
    {
        var champion = ModelCard.Load(TestRegistry.ChampionFile);
        var flat = RandomWindows(count, seed).SelectMany(w => w).ToArray();
        var predicted = new int[count];
        var confidence = new float[count];
        var entropy = new float[count];
        await using (var model = HarModel.Load(TestRegistry.ChampionFile))
        {
            var predictions = new Prediction[count];
            model.Predict(flat, new float[count * champion.ClassCount], predictions);
            for (var i = 0; i < count; i++)
            {
                (predicted[i], confidence[i], entropy[i]) = (predictions[i].ClassIndex, predictions[i].Confidence, predictions[i].Entropy);
            }
        }

        var frames = new float[flat.Length * 3];
        flat.CopyTo(frames, 0);
        flat.CopyTo(frames, flat.Length);
        flat.CopyTo(frames, 2 * flat.Length);
        var profile = new ReferenceProfileBuilder([.. champion.Channels]).AddRecording("reference", frames).Build("test")
            .WithOutputs(Har.Drift.OutputReference.FromPredictions(champion.Labels, predicted, confidence, entropy));
        return (flat, predicted, profile);
    }

    private static Dictionary<string, string> Card(string version, string[] labels) => new()
    {
        ["har.model_version"] = version,
        ["har.labels"] = JsonSerializer.Serialize(labels),
    };

    private static List<float[]> RandomWindows(int count, int seed)
    {
        var card = ModelCard.Load(TestRegistry.ChampionFile);
        var rng = new Random(seed);
        var windows = new List<float[]>();
        for (var n = 0; n < count; n++)
        {
            var window = new float[card.WindowLength * card.ChannelCount];
            for (var k = 0; k < window.Length; k++)
            {
                window[k] = (float)((rng.NextDouble() * 2) - 1);
            }

            windows.Add(window);
        }

        return windows;
    }

    private void Register(byte[] model, string version)
    {
        var file = Path.Combine(_env.Root, $"tiny-{version}.onnx");
        File.WriteAllBytes(file, model);
        _env.Registry.Register(file, new ModelRegistrationOptions { Deployer = "tester" });
    }

    /// <summary>One random window from each of <paramref name="devices"/> devices; returns what each caller got.</summary>
    private async Task<List<Prediction>> ServeRandomDevicesAsync(int devices, int seed = 5)
    {
        var served = new List<Prediction>();
        var windows = RandomWindows(devices, seed);
        for (var i = 0; i < devices; i++)
        {
            served.Add(await _env.PredictAsync($"device-{i}", windows[i]));
        }

        return served;
    }

    /// <summary>How many windows the candidate has scored (served or shadow) since the last conclusive interval.</summary>
    private long Scored(RolloutController c, string candidate) =>
        c.Observations.TakeSnapshot(candidate, TestRegistry.Champion, _env.Time.GetUtcNow(), [], reset: false).Candidate.Requests;

    /// <summary>Waits (at most 60 s) until the candidate's shadow copies, which run after the answers, are observed.</summary>
    private async Task WaitForScoredAsync(RolloutController c, string candidate, long scored)
    {
        var deadline = DateTime.UtcNow.AddSeconds(60);
        while (Scored(c, candidate) < scored && DateTime.UtcNow < deadline)
        {
            await Task.Delay(20);
        }
    }
}
