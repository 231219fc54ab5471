using System.Globalization;
using Har.Audit;
using Har.Inference;
using Microsoft.Extensions.Time.Testing;

namespace Har.Deployment.ProcessHost;

/// <summary>
/// Helper process for Har.Deployment's persistence tests.
/// <c>hash SEED KEY…</c> prints the routing hash of each key; <c>string-hash KEY</c> prints .NET's
/// per-process randomised string hash; <c>rollout DIR</c> opens the registry <c>DIR/registry</c> with the
/// audit log <c>DIR/audit</c>, starts (or resumes) a canary of 1.1.0 and drives it on a virtual clock,
/// printing one line per reconciliation, until it ends (<c>DONE phase</c>) or the test kills it.
/// <c>fleet DIR CONNECTION NAME</c> runs one replica of a fleet on the real clock: the registry <c>DIR/registry</c>, the
/// audit log and the control plane in PostgreSQL; as a follower it feeds synthetic observations (the leader none), prints <c>LEADER</c>/<c>FOLLOWER</c>,
/// every traffic plan it publishes (<c>PLAN name revision percent unix-ms</c>), <c>DONE name phase</c> and the windows its
/// feedback store holds labelled for 1.0.0 (<c>ACCURACY name labelled</c>), and reads from stdin <c>start</c> (a canary
/// of 1.1.0 started through this replica) and <c>label SEED</c> (20 windows of stream <c>name-SEED</c> served and
/// labelled here; prints <c>LABELLED name SEED windows</c>) and <c>count</c> (after a reconciliation of its own, prints
/// <c>COUNT name leader|follower labelled</c>).
/// <c>label DIR ROUND</c> opens the registry <c>DIR/registry</c> with a pipeline and a controller on the real clock, serves
/// 20 windows of stream <c>dev-ROUND</c>, labels them (alternately WALKING and SITTING, by time), prints
/// <c>LABELLED windows labelled correct</c> (the current version's totals in the feedback store) and waits to be killed.
/// </summary>
internal static class Program
{
    public static async Task<int> Main(string[] args)
    {
        switch (args.FirstOrDefault())
        {
            case "hash":
                var seed = ulong.Parse(args[1], CultureInfo.InvariantCulture);
                foreach (var key in args.Skip(2))
                {
                    Console.WriteLine(StableHash.Hash64(key, seed).ToString(CultureInfo.InvariantCulture));
                }

                return 0;
            case "string-hash":
                Console.WriteLine(args[1].GetHashCode(StringComparison.Ordinal).ToString(CultureInfo.InvariantCulture));
                return 0;
            case "rollout":
                return await RolloutAsync(args[1]);
            case "fleet":
                return await FleetReplica.RunAsync(args[1], args[2], args[3]);
            case "label":
                return await LabelAsync(args[1], int.Parse(args[2], CultureInfo.InvariantCulture));
            default:
                await Console.Error.WriteLineAsync("usage: hash SEED KEY… | string-hash KEY | rollout DIR | fleet DIR CONNECTION NAME | label DIR ROUND");
                return 2;
        }
    }

    private static async Task<int> RolloutAsync(string dir)
    {
        var stateDir = Path.Combine(dir, "registry", ".rollout");
        var status = RolloutController.ReadStatus(stateDir);
        var time = new FakeTimeProvider(status?.UpdatedAt ?? new DateTimeOffset(2026, 1, 15, 10, 30, 0, TimeSpan.Zero));
        await using var audit = AuditLog.Open(new AuditLogOptions { Directory = Path.Combine(dir, "audit"), EnableMetrics = false });
        var registry = new ModelRegistry(Path.Combine(dir, "registry"), audit, time);
        var options = new RolloutControllerOptions
        {
            MetricsRegistry = Prometheus.Metrics.NewCustomRegistry(),
        };
        var serving = new ServingOptions { MetricsRegistry = Prometheus.Metrics.NewCustomRegistry() };
        serving.Model.EnableMetrics = false;
        options.BuiltInStrategies.CanarySteps.Clear();
        for (var w = 5; w <= 100; w += 5)
        {
            options.BuiltInStrategies.CanarySteps.Add(w);
        }

        // Long enough (20 steps × 40 passes) that the test's 25 kills land mid-rollout even when a loaded machine lets the
        // child run dozens of ticks between the line the test reads and the kill.
        options.BuiltInStrategies.CanaryPassesPerStep = 40;

        // The tiny fixture models run in microseconds: their warm-up baselines are noise, so inflation is not judged here.
        options.Analysis.MaxLatencyInflation = null;

        await using var pipeline = ServingPipeline.Open(registry, serving, timeProvider: time);
        await using var controller = await RolloutController.OpenAsync(registry, pipeline, options, timeProvider: time);
        Console.WriteLine($"OPEN {controller.Status?.Phase.ToString() ?? "none"} {controller.Status?.StepIndex ?? -1} {controller.Status?.Revision ?? 0}");
        if (controller.Status is null)
        {
            await controller.ExecuteAsync(RolloutCommand.Start("1.1.0", "canary", "crash-test", "persistence test") with { RolloutId = "rollout-crash" });
        }

        while (controller.Status is { } s && !s.Phase.IsTerminal())
        {
            var o = controller.Observations;
            for (var i = 0; i < 300; i++)
            {
                var label = i % 4;
                o.RecordPrediction("1.0.0", new PredictionObservation(label, 0.9f, false, TimeSpan.FromMilliseconds(10)));
                o.RecordPrediction("1.1.0", new PredictionObservation(label, 0.9f, false, TimeSpan.FromMilliseconds(10)));
                o.RecordPair(new PairedObservation(label, 0.9f, false, label, 0.9f, false));
            }

            time.Advance(TimeSpan.FromMinutes(1));
            var after = await controller.ReconcileAsync();
            Console.WriteLine($"TICK {after!.Phase} {after.StepIndex} {after.Revision}");
        }

        Console.WriteLine($"DONE {controller.Status!.Phase}");
        return 0;
    }

    private static async Task<int> LabelAsync(string dir, int round)
    {
        var registry = new ModelRegistry(Path.Combine(dir, "registry"));
        var serving = new ServingOptions { MetricsRegistry = Prometheus.Metrics.NewCustomRegistry() };
        serving.Model.EnableMetrics = false;
        await using var pipeline = ServingPipeline.Open(registry, serving);
        await using var controller = await RolloutController.OpenAsync(registry, pipeline, new RolloutControllerOptions { MetricsRegistry = Prometheus.Metrics.NewCustomRegistry() });
        var labelled = await ServeAndLabelAsync(pipeline, $"dev-{round}", round);
        var (total, correct) = pipeline.Feedback.Accuracy(registry.CurrentVersion!);
        Console.WriteLine($"LABELLED {labelled} {total} {correct}");
        await Task.Delay(Timeout.Infinite); // killed by the test: nothing is closed or flushed
        return 0;
    }

    /// <summary>Serves 20 random windows of <paramref name="stream"/> and labels them by time (WALKING for an even <paramref name="seed"/>, SITTING otherwise); returns the windows labelled.</summary>
    internal static async Task<int> ServeAndLabelAsync(ServingPipeline pipeline, string stream, int seed)
    {
        var values = pipeline.Geometry.WindowValues;
        var rng = new Random(seed);
        var windows = new float[20 * values];
        for (var i = 0; i < windows.Length; i++)
        {
            windows[i] = (float)(rng.NextDouble() * 2 - 1);
        }

        var from = DateTimeOffset.UtcNow.AddMinutes(-1);
        for (var w = 0; w < 20; w++)
        {
            await pipeline.PredictAsync(stream, windows.AsMemory(w * values, values), new Prediction[1]);
        }

        return pipeline.Feedback.Report(stream, seed % 2 == 0 ? "WALKING" : "SITTING", from, DateTimeOffset.UtcNow.AddMinutes(1));
    }
}
