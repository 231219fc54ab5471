using System.Diagnostics;
using System.Globalization;
using System.Text;
using Har.Audit;
using Har.Deployment;

namespace Har.Cli.Commands;

/// <summary>
/// The real-clock half of the rollout evaluation: the Har.Deployment README's quick start as a user runs it —
/// registry with the bundled models, the serving pipeline, a controller with default options except a short
/// analysis interval, a canary of the healthy candidate driven by <see cref="RolloutController.RunAsync"/> —
/// while devices stream recorded sessions through the pipeline from a number of concurrent callers. Nothing is
/// simulated: real ONNX sessions, real batching and queueing, the machine's own clock and load.
/// </summary>
internal static class RealClockEvaluation
{
    /// <summary>The real-clock matrix of issue 16: 1, 8 and 64 requests in flight × 5 and 500 devices.</summary>
    public static IReadOnlyList<(int InFlight, int Devices)> Matrix { get; } =
        [.. from inFlight in new[] { 1, 8, 64 } from devices in new[] { 5, 500 } select (inFlight, devices)];

    /// <summary>A cell as <c>--cells</c> matches it, e.g. "64 in flight, 500 devices".</summary>
    public static string Describe((int InFlight, int Devices) cell) => string.Create(CultureInfo.InvariantCulture, $"{cell.InFlight} in flight, {cell.Devices} devices");

    /// <summary>The outcome of one real-clock rollout.</summary>
    public sealed record Run(int InFlight, int Devices, RolloutPhase Phase, bool Promoted, TimeSpan Elapsed, long Windows, string? FailingGates, string LastAnalysis)
    {
        /// <summary>Gets the analyses that did not pass, by step and verdict with the gates that held them: "step 5 at 100 %: Inconclusive (latency Inconclusive) 12×", as seen by polling the status.</summary>
        public string Undecided { get; init; } = string.Empty;
    }

    /// <summary>Runs one rollout of the healthy candidate under <paramref name="inFlight"/> concurrent callers streaming <paramref name="devices"/> devices.</summary>
    public static async Task<Run> RunOnceAsync(IReadOnlyList<ReadOnlyMemory<float>> sessions, int inFlight, int devices, TimeSpan interval, TimeSpan limit, CancellationToken cancellationToken)
    {
        var root = Directory.CreateTempSubdirectory("har-realclock-").FullName;
        try
        {
            await using var audit = AuditLog.Open(new AuditLogOptions { Directory = Path.Combine(root, "audit"), EnableMetrics = false });
            var registry = new ModelRegistry(Path.Combine(root, "registry"), audit);
            registry.Register(BundledModels.Champion);
            var candidate = registry.Register(BundledModels.Candidate).Version;

            // The candidate reads the frames before each window: the pipeline keeps them, and the champion reads its own last frames.
            var context = Math.Max(Har.Inference.ModelCard.Load(BundledModels.Champion).ContextFrames, Har.Inference.ModelCard.Load(BundledModels.Candidate).ContextFrames);
            var serving = new ServingOptions { MetricsRegistry = Prometheus.Metrics.NewCustomRegistry(), ContextFrames = context };
            serving.Model.EnableMetrics = false;
            await using var pipeline = ServingPipeline.Open(registry, serving);
            var options = new RolloutControllerOptions { MetricsRegistry = Prometheus.Metrics.NewCustomRegistry() };
            options.BuiltInStrategies.AnalysisInterval = interval;
            await using var controller = await RolloutController.OpenAsync(registry, pipeline, options, cancellationToken: cancellationToken).ConfigureAwait(false);
            var started = Stopwatch.GetTimestamp();
            _ = await controller.ExecuteAsync(RolloutCommand.Start(candidate, "canary", actor: "evaluate", reason: "real-clock evaluation"), cancellationToken).ConfigureAwait(false);

            using var stop = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
            stop.CancelAfter(limit);
            var loop = controller.RunAsync(stop.Token);
            var chunk = pipeline.Geometry.Stride * pipeline.Geometry.Channels.Count;
            var ids = Enumerable.Range(0, devices).Select(d => string.Create(CultureInfo.InvariantCulture, $"device-{d}")).ToArray();
            long windows = 0;
            bool Running() => !stop.IsCancellationRequested && !(controller.Status?.Phase.IsTerminal() ?? false);
            var callers = Enumerable.Range(0, inFlight).Select(caller => Task.Run(
                async () =>
                {
                    // Each caller streams its share of the devices in turn, one stride of frames per call; a device
                    // replays a recorded session from a point of its own.
                    var position = new int[devices];
                    for (var d = caller; d < devices; d += inFlight)
                    {
                        var frames = sessions[d % sessions.Count];
                        position[d] = (int)(((long)d * 7919 * chunk) % Math.Max(chunk, frames.Length - chunk)) / chunk * chunk;
                    }

                    while (Running())
                    {
                        for (var d = caller; d < devices && Running(); d += inFlight)
                        {
                            var frames = sessions[d % sessions.Count];
                            if (position[d] + chunk > frames.Length)
                            {
                                position[d] = 0;
                            }

                            try
                            {
                                var scored = await pipeline.AppendAsync(ids[d], frames.Slice(position[d], chunk), stop.Token).ConfigureAwait(false);
                                Interlocked.Add(ref windows, scored.Length);
                            }
                            catch (OperationCanceledException) when (stop.IsCancellationRequested)
                            {
                                return;
                            }

                            position[d] += chunk;
                        }

                        if (devices < inFlight)
                        {
                            await Task.Yield(); // a caller without a device of its own
                        }
                    }
                },
                CancellationToken.None)).ToArray();

            // Why a run needs more intervals: every analysis that did not pass, tallied by step and gate.
            var seen = 0;
            var undecided = new SortedDictionary<string, int>(StringComparer.Ordinal);
            var lastHeld = new Dictionary<string, string>(StringComparer.Ordinal);
            void Tally()
            {
                if (controller.Status is { LastAnalysis: { } last } current && current.AnalysesRun != seen)
                {
                    seen = current.AnalysesRun;
                    if (last.Verdict != GateVerdict.Pass)
                    {
                        // One entry per analysis: its verdict and the gates that held it ("all gates" when none passed alike).
                        var held = last.Gates.Where(g => g.Verdict != GateVerdict.Pass).ToList();
                        var gates = held.Count == last.Gates.Count && held.All(g => g.Verdict == last.Verdict)
                            ? "all gates"
                            : string.Join(", ", held.Select(g => $"{g.Gate} {g.Verdict}"));
                        var key = string.Create(CultureInfo.InvariantCulture, $"step {current.StepIndex} at {current.CandidatePercent:0.##} %: {last.Verdict} ({gates})");
                        undecided[key] = undecided.GetValueOrDefault(key) + 1;
                        // The latest message of each gate that held it: what was missing, with its numbers.
                        lastHeld[key] = string.Join(" | ", held.Where(g => g.Verdict != GateVerdict.Unmeasurable).Select(g => $"{g.Gate}: {g.Message}"));
                    }
                }
            }

            while (Running())
            {
                await Task.Delay(200, CancellationToken.None).ConfigureAwait(false);
                Tally();
            }

            await stop.CancelAsync().ConfigureAwait(false);
            await Task.WhenAll(callers.Select(t => t.ContinueWith(_ => { }, TaskScheduler.Default))).ConfigureAwait(false);
            await loop.ContinueWith(_ => { }, TaskScheduler.Default).ConfigureAwait(false);
            var status = controller.Status!;
            var failing = status.LastAnalysis?.Gates.Where(g => g.Verdict == GateVerdict.Fail && !g.Message.StartsWith("not counted", StringComparison.Ordinal) && !g.Message.StartsWith("outranked", StringComparison.Ordinal)).Select(g => g.Gate).ToList();
            Tally();
            return new Run(inFlight, devices, status.Phase, status.Promoted, Stopwatch.GetElapsedTime(started), windows, failing is { Count: > 0 } ? string.Join(", ", failing) : null, status.LastAnalysis?.ToString() ?? "no analysis")
            {
                Undecided = string.Join("; ", undecided.Select(u => string.Create(CultureInfo.InvariantCulture, $"{u.Key} {u.Value}×{(lastHeld.GetValueOrDefault(u.Key) is { Length: > 0 } m ? $" (last: {m})" : string.Empty)}"))),
            };
        }
        finally
        {
            Directory.Delete(root, recursive: true);
        }
    }

    /// <summary>The runs as a Markdown table, one row per cell.</summary>
    public static string ToMarkdown(IReadOnlyList<Run> runs, string command, TimeSpan interval)
    {
        var inv = CultureInfo.InvariantCulture;
        var md = new StringBuilder();
        md.AppendLine(inv, $"## Real clock: healthy candidate, default options, {interval.TotalSeconds:0} s analysis intervals").AppendLine();
        md.AppendLine(inv, $"Command: `{command}`").AppendLine();
        md.AppendLine(inv, $"Promoted in {runs.Count(r => r.Promoted)} of {runs.Count} runs.").AppendLine();
        md.AppendLine("| in flight | devices | runs | promoted | rolled back | other | median time to decide | windows scored (median) | failing gates of rollbacks |");
        md.AppendLine("|---:|---:|---:|---:|---:|---:|---:|---:|---|");
        foreach (var cell in runs.GroupBy(r => (r.InFlight, r.Devices)))
        {
            var list = cell.ToList();
            var times = list.Select(r => r.Elapsed.TotalSeconds).Order().ToList();
            var scored = list.Select(r => r.Windows).Order().ToList();
            var gates = string.Join("; ", list.Where(r => r.Phase == RolloutPhase.RolledBack).Select(r => r.FailingGates ?? "?"));
            md.AppendLine(inv, $"| {cell.Key.InFlight} | {cell.Key.Devices} | {list.Count} | {list.Count(r => r.Promoted)} | {list.Count(r => r.Phase == RolloutPhase.RolledBack)} | {list.Count(r => !r.Promoted && r.Phase != RolloutPhase.RolledBack)} | {times[times.Count / 2]:0} s | {scored[scored.Count / 2]:N0} | {(gates.Length == 0 ? "-" : gates)} |");
        }

        var slow = runs.Where(r => r.Undecided.Length > 0 || !r.Promoted).ToList();
        if (slow.Count > 0)
        {
            md.AppendLine().AppendLine("Runs with analyses that did not pass (step, candidate share, gate, verdict, how many analyses):").AppendLine();
            foreach (var r in slow)
            {
                // A run not promoted keeps its last analysis whole (every gate's message and numbers): the evidence to diagnose it.
                md.AppendLine(inv, $"- {r.InFlight} in flight, {r.Devices} devices: {r.Phase}{(r.Promoted ? " (promoted)" : string.Empty)} after {r.Elapsed.TotalSeconds:0} s; {(r.Undecided.Length == 0 ? "every analysis passed" : r.Undecided)}{(r.Promoted ? string.Empty : $"; last analysis: {r.LastAnalysis}")}");
            }
        }

        return md.ToString();
    }
}
