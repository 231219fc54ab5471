using System.Text.Json;
using Har.Deployment.Tests.Support;
using Har.Testing;
using Microsoft.Extensions.Time.Testing;

namespace Har.Deployment.Tests.Feedback;

/// <summary>
/// End to end on the real serving pipeline (the committed CNN+BiLSTM champion as real ONNX sessions, HAPT
/// test sessions streamed by 100 devices, the canary controller on a fake clock): ground-truth labels for the
/// windows of the previous interval arrive one interval late through <see cref="FeedbackStore.Report(string, string, long, long)"/>.
/// A candidate that is the same network with SITTING and STANDING swapped in its card — a packaging error: it
/// predicts the same class indexes under other names — disagrees with the champion by activity name and is rolled
/// back by the agreement gate at once; with agreement and class mix switched off, the accuracy gate alone fails it
/// on the labels. An identical copy passes the accuracy gate and is promoted.
/// </summary>
public sealed class FeedbackRolloutTests : IDisposable
{
    private const int Devices = 100;
    private const int WindowsPerDeviceInterval = 12;

    private readonly string _root = Directory.CreateTempSubdirectory("har-feedback-e2e-").FullName;
    private readonly FakeTimeProvider _time = new(new DateTimeOffset(2026, 1, 15, 10, 30, 0, TimeSpan.Zero));
    private readonly MirrorCounter _mirrors = new();

    public void Dispose()
    {
        try
        {
            Directory.Delete(_root, recursive: true);
        }
        catch (IOException)
        {
        }
    }

    [Fact]
    public async Task CandidateWithSwappedLabels_IsRolledBackByAgreement_AndByTheAccuracyGateAlone_WhileAnIdenticalCopyIsPromoted()
    {
        var data = TestPaths.RequireSharedData();
        var sessions = HaptTestSessions.Load(data).Where(s => s.Frames.Length >= 6 * 4000).ToList();
        var registry = new ModelRegistry(Path.Combine(_root, "registry"), timeProvider: _time);
        registry.Register(TestPaths.ChampionModel);
        var bytes = File.ReadAllBytes(TestPaths.ChampionModel);
        var labels = JsonSerializer.Deserialize<string[]>(OnnxModelEditor.ReadCard(bytes)["har.labels"])!;
        var swapped = labels.Select(l => l == "SITTING" ? "STANDING" : l == "STANDING" ? "SITTING" : l).ToArray();
        registry.Register(Write("swapped.onnx", OnnxModelEditor.WithKey(OnnxModelEditor.WithKey(bytes, "har.labels", JsonSerializer.Serialize(swapped)), "har.model_version", "1.0.1")));
        registry.Register(Write("copy.onnx", OnnxModelEditor.WithKey(bytes, "har.model_version", "1.0.2")));
        await using var pipeline = ServingPipeline.Open(registry, TestRegistry.ServingOptions(), observers: [_mirrors], timeProvider: _time);

        // The swapped candidate, default gates: its answers are compared with the champion's by name, and it disagrees
        // wherever a person sits or stands (indexes compared, it had looked identical: only the labels could see it).
        var caught = await RunAsync(registry, pipeline, "1.0.1", sessions, proxies: true);
        Assert.True(caught.Phase == RolloutPhase.RolledBack, Describe(caught));
        Assert.Equal(GateVerdict.Fail, Gate(caught.LastAnalysis!, "agreement").Verdict);
        Assert.Equal("1.0.0", registry.CurrentVersion);

        // With agreement and class mix switched off, the accuracy gate alone fails it on the labels.
        registry.Register(Write("swapped-again.onnx", OnnxModelEditor.WithKey(OnnxModelEditor.WithKey(bytes, "har.labels", JsonSerializer.Serialize(swapped)), "har.model_version", "1.0.3")));
        var bad = await RunAsync(registry, pipeline, "1.0.3", sessions, proxies: false);
        Assert.True(bad.Phase == RolloutPhase.RolledBack, Describe(bad));
        var failing = bad.LastAnalysis!;
        Assert.Equal(GateVerdict.Fail, Gate(failing, "accuracy").Verdict);
        Assert.DoesNotContain(bad.LastAnalysis!.Gates, g => g.Gate != "accuracy" && g.Verdict == GateVerdict.Fail);
        Assert.True(Gate(failing, "accuracy").Evidence["paired"] >= 100, Describe(bad));
        Assert.True(Gate(failing, "accuracy").Evidence["ci_lower"] > 0.02, Describe(bad));
        Assert.Equal("1.0.0", registry.CurrentVersion);

        // The identical copy: accuracy passes (paired, no discordant window) and the canary is promoted.
        var good = await RunAsync(registry, pipeline, "1.0.2", sessions, proxies: true);
        Assert.True(good.Phase == RolloutPhase.Succeeded && good.Promoted, Describe(good));
        var last = good.LastAnalysis!;
        Assert.Equal(GateVerdict.Pass, Gate(last, "accuracy").Verdict);
        Assert.InRange(Gate(last, "accuracy").Evidence["accuracy_drop"], -0.01, 0.01); // the same network (batching may flip a near tie)
        Assert.Equal("1.0.2", registry.CurrentVersion);

        // Both versions' accuracy on the labels, as har_model_accuracy reports it: the swapped card is clearly worse.
        var (labelled, correct) = pipeline.Feedback.Accuracy("1.0.3");
        var (championLabelled, championCorrect) = pipeline.Feedback.Accuracy("1.0.0");
        Assert.True((double)correct / labelled < ((double)championCorrect / championLabelled) - 0.05, $"1.0.3 {correct}/{labelled}, 1.0.0 {championCorrect}/{championLabelled}");
    }

    private async Task<RolloutStatus> RunAsync(ModelRegistry registry, ServingPipeline pipeline, string candidate, List<RecordedSession> sessions, bool proxies)
    {
        var options = TestRegistry.Options(o =>
        {
            if (!proxies)
            {
                (o.Analysis.MinAgreementRate, o.Analysis.MaxClassMixDistance) = (null, null);
            }

            o.StateDirectory = Path.Combine(_root, "state-" + candidate);

            // This test is about the quality gates: the latency gates (real timings on a busy machine) have their own tests.
            (o.Analysis.LatencyP95Budget, o.Analysis.LatencyP99Budget, o.Analysis.MaxLatencyRatio, o.Analysis.MaxLatencyInflation) = (null, null, null, null);
        });
        await using var controller = await RolloutController.OpenAsync(registry, options, pipeline, null, DriftClassMixTest.Instance, null, _time, CancellationToken.None);
        var status = await controller.ExecuteAsync(RolloutCommand.Start(candidate, "canary", "tester", "feedback end to end"));
        var position = new long[Devices];
        var activities = pipeline.Feedback.Activities;
        var pending = new List<(string Device, long Start, long End, int Label)>();
        for (var interval = 0; interval < 20 && !status.Phase.IsTerminal(); interval++)
        {
            var delivered = pending.ToList();
            pending.Clear();
            for (var d = 0; d < Devices; d++)
            {
                var device = $"{candidate}-device-{d}";
                var session = sessions[d % sessions.Count];
                var frames = session.Frames;
                var total = frames.Length / 6;
                var start = position[d];
                var count = WindowsPerDeviceInterval * 100;
                var chunk = new float[count * 6];
                for (var f = 0; f < count; f++)
                {
                    frames.Span.Slice((int)((start + f) % total) * 6, 6).CopyTo(chunk.AsSpan(f * 6));
                }

                for (var offset = 0; offset < count; offset += 400)
                {
                    await pipeline.AppendAsync(device, chunk.AsMemory(offset * 6, Math.Min(400, count - offset) * 6));
                }

                // The truth of these frames, as one label per run of equal activity; it arrives an interval later.
                var labels = session.FrameLabels.Span;
                var runStart = start;
                for (var f = start + 1; f <= start + count; f++)
                {
                    var previous = labels[(int)((f - 1) % total)];
                    if (f == start + count || labels[(int)(f % total)] != previous || f % total == 0)
                    {
                        if (previous >= 0)
                        {
                            pending.Add((device, runStart, f, previous));
                        }

                        runStart = f;
                    }
                }

                position[d] = start + count;
            }

            foreach (var (device, from, to, label) in delivered)
            {
                pipeline.Feedback.Report(device, activities[label], from, to);
            }

            // Mirror runs complete after the served answer: let the interval's ones finish before it is analysed.
            await _mirrors.WaitAsync();
            _time.Advance(TimeSpan.FromMinutes(1));
            status = (await controller.ReconcileAsync())!;
        }

        return status;
    }

    /// <summary>Counts the candidate's served windows and the mirror runs (done or failed) that pair them with the champion.</summary>
    private sealed class MirrorCounter : IServingObserver
    {
        private readonly System.Collections.Concurrent.ConcurrentDictionary<string, long> _served = new(StringComparer.Ordinal);
        private long _mirrored;

        public void OnPredictions(in ServedPredictions predictions)
        {
            if (predictions.Role == PredictionRole.Served)
            {
                var windows = predictions.Predictions.Length;
                _served.AddOrUpdate(predictions.Version, windows, (_, n) => n + windows);
            }
            else
            {
                Interlocked.Add(ref _mirrored, predictions.Predictions.Length);
            }
        }

        public void OnError(string? streamId, string version, PredictionRole role, int windows, TimeSpan latency, Exception error)
        {
            if (role != PredictionRole.Served)
            {
                Interlocked.Add(ref _mirrored, windows);
            }
        }

        /// <summary>Waits (polling, at most 2 minutes) until every candidate window so far has its mirror run.</summary>
        public async Task WaitAsync()
        {
            var deadline = DateTime.UtcNow + TimeSpan.FromMinutes(2);
            while (Interlocked.Read(ref _mirrored) < Expected() && DateTime.UtcNow < deadline)
            {
                await Task.Delay(10, TestContext.Current.CancellationToken);
            }

            Assert.True(Interlocked.Read(ref _mirrored) >= Expected(), $"mirror runs: {Interlocked.Read(ref _mirrored)} of {Expected()}");
        }

        // Every window the candidates served was mirrored to the champion (canary with MirrorToChampion, the default).
        private long Expected() => _served.Where(kv => kv.Key != "1.0.0").Sum(kv => kv.Value);
    }

    private static GateResult Gate(AnalysisResult analysis, string name) => analysis.Gates.Single(g => g.Gate == name);

    private static string Describe(RolloutStatus status) => $"{status.Phase} after {status.AnalysesRun} analyses: {status.LastAnalysis}";

    private string Write(string name, byte[] bytes)
    {
        var path = Path.Combine(_root, name);
        File.WriteAllBytes(path, bytes);
        return path;
    }
}
