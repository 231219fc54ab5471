using System.Globalization;
using Har.Audit;

namespace Har.Deployment.ProcessHost;

/// <summary>One replica of a fleet for the fleet tests (real clock, real PostgreSQL, killed with SIGKILL by the test); only followers record traffic.</summary>
internal static class FleetReplica
{
    public static async Task<int> RunAsync(string dir, string connectionString, string name)
    {
        var time = TimeProvider.System;
        await using var audit = AuditLog.Open(new AuditLogOptions { ConnectionString = connectionString, EnableMetrics = false });
        var registry = new ModelRegistry(Path.Combine(dir, "registry"), audit, time);
        var options = new RolloutControllerOptions
        {
            ConnectionString = connectionString,
            MetricsRegistry = Prometheus.Metrics.NewCustomRegistry(),
        };
        options.BuiltInStrategies.CanarySteps.Clear();
        for (var w = 5; w <= 100; w += 5)
        {
            options.BuiltInStrategies.CanarySteps.Add(w);
        }

        options.BuiltInStrategies.CanaryPassesPerStep = 1;
        options.BuiltInStrategies.AnalysisInterval = TimeSpan.FromSeconds(1);

        // The tiny fixture models run in microseconds: their warm-up baselines are noise, so inflation is not judged here.
        options.Analysis.MaxLatencyInflation = null;
        var serving = new ServingOptions { MetricsRegistry = Prometheus.Metrics.NewCustomRegistry() };
        serving.Model.EnableMetrics = false;

        await using var pipeline = ServingPipeline.Open(registry, serving, timeProvider: time);
        await using var controller = await RolloutController.OpenAsync(registry, pipeline, options, timeProvider: time);
        using var stop = new CancellationTokenSource();
        var loop = controller.RunAsync(stop.Token);
        var commands = Task.Run(() => ReadCommandsAsync(controller, pipeline, name, stop.Token));
        Print($"READY {name}");

        // The monitor runs on its own thread, so a replica busy loading a model (thread pool saturated) still reports
        // the moment its plan changed, not the moment a pool thread was free to print it.
        var monitor = new Thread(() => Monitor(controller, pipeline.Feedback, name, time, loop)) { IsBackground = true, Name = "fleet-monitor" };
        monitor.Start();
        await loop;
        return 0;
    }

    private static void Monitor(RolloutController controller, FeedbackStore feedback, string name, TimeProvider time, Task loop)
    {
        var leader = false;
        long revision = -1;
        long labelled = 0;
        string? done = null;
        var nextFeed = time.GetTimestamp();
        while (!loop.IsCompleted)
        {
            if (controller.IsLeader != leader)
            {
                leader = !leader;
                Print($"{(leader ? "LEADER" : "FOLLOWER")} {name} {Now(time)}");
            }

            var plan = controller.Plan;
            if (plan.Revision != revision)
            {
                revision = plan.Revision;
                Print(string.Create(CultureInfo.InvariantCulture, $"PLAN {name} {plan.Revision} {plan.CandidatePercent:0.##} {Now(time)} {plan.Stable}"));
            }

            // What the accuracy gate and har_model_accuracy read here: the windows labelled for the champion.
            if (feedback.Accuracy("1.0.0").Labelled is var held && held != labelled)
            {
                labelled = held;
                Print($"ACCURACY {name} {labelled}");
            }

            if (controller.Status is { } s && s.Phase.IsTerminal() && s.Phase.ToString() != done)
            {
                done = s.Phase.ToString();
                Print($"DONE {name} {done} {s.Revision}");
            }

            // Only followers see traffic here: the leader's analysis has data only if every replica's observations reach it.
            if (time.GetElapsedTime(nextFeed) >= TimeSpan.Zero && !controller.IsLeader)
            {
                Feed(controller.Observations);
                nextFeed = time.GetTimestamp() + (long)(0.1 * time.TimestampFrequency);
            }

            Thread.Sleep(5);
        }
    }

    /// <summary>What a replica's traffic looks like to the analysis: both versions healthy and agreeing.</summary>
    private static void Feed(RolloutObservations o)
    {
        for (var i = 0; i < 40; i++)
        {
            var label = i % 4;
            o.RecordPrediction("1.0.0", new PredictionObservation(label, 0.9f, false, TimeSpan.FromMilliseconds(10)));
            o.RecordPrediction("1.1.0", new PredictionObservation(label, 0.9f, false, TimeSpan.FromMilliseconds(10)));
            o.RecordPair(new PairedObservation(label, 0.9f, false, label, 0.9f, false));
        }
    }

    private static async Task ReadCommandsAsync(RolloutController controller, ServingPipeline pipeline, string name, CancellationToken ct)
    {
        while (await Console.In.ReadLineAsync(ct) is { } line)
        {
            if (line.Trim() == "count")
            {
                // After a whole round of this replica's own (waiting for the one in progress): what it holds is settled.
                await controller.ReconcileAsync(ct);
                Print($"COUNT {name} {(controller.IsLeader ? "leader" : "follower")} {pipeline.Feedback.Accuracy("1.0.0").Labelled}");
                continue;
            }

            if (line.StartsWith("label ", StringComparison.Ordinal))
            {
                var seed = int.Parse(line.AsSpan(6), CultureInfo.InvariantCulture);
                var windows = await Program.ServeAndLabelAsync(pipeline, $"{name}-{seed}", seed);
                Print($"LABELLED {name} {seed} {windows}");
                continue;
            }

            if (line.Trim() != "start")
            {
                continue;
            }

            try
            {
                var status = await controller.ExecuteAsync(RolloutCommand.Start("1.1.0", "canary", "fleet-test", "fleet test") with { RolloutId = "rollout-fleet" }, ct);
                Print($"STARTED {name} {status.Revision}");
            }
            catch (Exception ex) when (ex is RolloutConflictException or RolloutCommandRejectedException or IOException)
            {
                Print($"ERROR {name} {ex.GetType().Name}: {ex.Message.ReplaceLineEndings(" ")}");
            }
        }
    }

    private static long Now(TimeProvider time) => time.GetUtcNow().ToUnixTimeMilliseconds();

    private static void Print(string line)
    {
        lock (Console.Out)
        {
            Console.WriteLine(line);
            Console.Out.Flush();
        }
    }
}
