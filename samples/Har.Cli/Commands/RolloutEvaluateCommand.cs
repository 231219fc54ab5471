using System.CommandLine;
using System.Diagnostics;
using System.Globalization;
using Har.Cli.Demo;
using Har.Deployment;
using Har.Inference;
using Har.Inference.Data;

namespace Har.Cli.Commands;

/// <summary>
/// <c>har rollout evaluate</c>: the rollout evaluation matrix of Har.Deployment's simulation (real models' predictions,
/// real controller and analysis, virtual clock) over traffic conditions and faulty candidates; writes Markdown.
/// </summary>
internal static class RolloutEvaluateCommand
{
    /// <summary>The reduced matrix CI runs: the corners that stress each gate (few samples, heavy queueing, no smoke windows).</summary>
    internal static IReadOnlyList<EvaluationCell> QuickMatrix { get; } =
    [
        new(1, 5, 10, false),
        new(8, 500, 200, true, Labels: true),
        new(64, 5, 200, false, Labels: true),
        new(64, 500, 10, true),
    ];

    public static Command Create()
    {
        var data = new Option<DirectoryInfo?>("--data") { Description = "The UCI HAPT folder (default: ../shared/data/uci-hapt); its test subjects' sessions are replayed. Without it: the synthetic generator." };
        var runs = new Option<int>("--runs") { Description = "Seeded runs per cell and candidate, 1 to 1,000 (issue 16: 100).", DefaultValueFactory = _ => 100 }
            .InRange(1, 1_000, "each run is a whole rollout, and the matrix runs them for every cell and candidate");
        var quick = new Option<bool>("--quick") { Description = "The reduced matrix (4 cells) instead of all 48." };
        var seed = new Option<int>("--seed") { Description = "The first seed.", DefaultValueFactory = _ => 1 };
        var output = new Option<FileInfo?>("--out") { Description = "Write the Markdown report to this file (default: standard output)." };
        var only = new Option<string?>("--candidates") { Description = "Comma-separated candidates (default all): healthy, errors-5%, errors-20%, service-time-3x, broken-normalization, permuted-labels, less-accurate-6pt." };
        var where = new Option<string?>("--cells") { Description = "Only the cells whose description contains every ';'-separated part, e.g. \"10 windows/s;10 % labels\", or with --real-clock \"64 in flight\" (default: all)." };
        var realClock = new Option<bool>("--real-clock") { Description = "Run the real-clock matrix instead (1/8/64 in flight × 5/500 devices, the healthy candidate, default options, real ONNX sessions and this machine's clock)." };
        var interval = new Option<int>("--interval") { Description = "With --real-clock: the analysis interval in seconds, 1 to 3,600.", DefaultValueFactory = _ => 5 }
            .InRange(1, 3_600, "each run waits several intervals on the real clock");
        var command = new Command("evaluate", "Run the rollout evaluation matrix (in flight × devices × windows/s × smoke windows × feedback labels, healthy and faulty candidates) on a virtual clock, or with --real-clock the README's quick start under real load, and write the outcome as Markdown.") { data, runs, quick, seed, output, only, where, realClock, interval };
        command.SetAction(async (parse, ct) =>
        {
            if (parse.GetValue(realClock))
            {
                return await RunRealClockAsync(parse.GetValue(data)?.FullName ?? SharedData.FindHapt(), parse.GetValue(runs), TimeSpan.FromSeconds(parse.GetValue(interval)), parse.GetValue(where), parse.GetValue(output), ct).ConfigureAwait(false);
            }

            var candidates = EvaluationCandidate.All;
            if (parse.GetValue(only) is { } list)
            {
                var names = list.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
                var unknown = names.Where(n => candidates.All(c => c.Name != n)).ToList();
                if (unknown.Count > 0)
                {
                    throw new ArgumentException($"--candidates names {string.Join(", ", unknown)}; expected some of {string.Join(", ", candidates.Select(c => c.Name))}.");
                }

                candidates = [.. candidates.Where(c => names.Contains(c.Name))];
            }

            var folder = parse.GetValue(data)?.FullName ?? SharedData.FindHapt();
            var temp = Directory.CreateTempSubdirectory("har-evaluate-").FullName;
            try
            {
                var registry = new ModelRegistry(temp);
                registry.Register(BundledModels.Champion);
                registry.Register(BundledModels.Candidate);
                var card = ModelCard.Load(registry.Get(registry.CurrentVersion!).ModelPath);
                var (streams, source) = folder is null ? (Synthetic(card), "the synthetic generator (no ../shared data)") : (Hapt(folder, card, ct), "the UCI HAPT test subjects");
                var started = Stopwatch.GetTimestamp();
                var options = new RolloutControllerOptions { MetricsRegistry = Prometheus.Metrics.NewCustomRegistry() };
                await using var simulation = await RolloutSimulation.PrepareAsync(registry, ModelCard.Load(BundledModels.Candidate).ModelVersion, streams, options, cancellationToken: ct).ConfigureAwait(false);
                var cells = parse.GetValue(quick) ? QuickMatrix : RolloutEvaluation.FullMatrix;
                if (parse.GetValue(where) is { } filter)
                {
                    var parts = filter.Split(';', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
                    cells = [.. cells.Where(c => parts.All(p => c.ToString().Contains(p, StringComparison.Ordinal)))];
                    if (cells.Count == 0)
                    {
                        throw new ArgumentException($"--cells '{filter}' matches no cell; cells read like '{RolloutEvaluation.FullMatrix[0]}'.");
                    }
                }

                var n = parse.GetValue(runs);
                var results = await RolloutEvaluation.RunAsync(simulation, cells, candidates, n, parse.GetValue(seed), r =>
                {
                    Console.Error.WriteLine($"{r.Candidate.Name} @ {r.Cell}: {r.Expected}/{r.Runs} as expected");
                    foreach (var line in r.Unexpected)
                    {
                        Console.Error.WriteLine($"  {line}");
                    }
                }, ct).ConfigureAwait(false);
                Console.Error.WriteLine($"time: preparation {simulation.PreparationTime.TotalSeconds:0.0} s; {simulation.Profile}");
                var inv = CultureInfo.InvariantCulture;
                var header = string.Create(inv, $"Champion {simulation.Champion} vs candidate {simulation.Candidate} (the bundled models) on {source}: {simulation.Windows} windows scored by both models; agreement {simulation.HealthyAgreement:P1} (broken normalization {simulation.BrokenAgreement:P1}); measured single-window p95 {simulation.ChampionLatencyP95.TotalMilliseconds:0.###} ms vs {simulation.CandidateLatencyP95.TotalMilliseconds:0.###} ms; accuracy on the labelled windows {simulation.ChampionAccuracy:P1} vs {simulation.CandidateAccuracy:P1} (the less accurate candidate {simulation.LessAccurateAccuracy(0.06):P1}); uncertain rate {simulation.Calibration.ChampionUncertain:P1} vs {simulation.Calibration.CandidateUncertain:P1}, mean confidence {simulation.Calibration.ChampionConfidence:0.###} vs {simulation.Calibration.CandidateConfidence:0.###}. Default options (canary 10 → 50 → 100 % with the candidate shadowing the champion's windows, 1-minute intervals, 2 passes per step), {n} run(s) per cell, {cells.Count} cells × {candidates.Count} candidates, {Stopwatch.GetElapsedTime(started).TotalSeconds:0} s.");
                var args = string.Join(' ', new[] { "har rollout evaluate", parse.GetValue(quick) ? "--quick" : null, $"--runs {n}", parse.GetValue(only) is { } o ? $"--candidates {o}" : null, parse.GetValue(where) is { } w ? $"--cells \"{w}\"" : null, folder is null ? null : "--data <uci-hapt>" }.Where(a => a is not null));
                var markdown = RolloutEvaluation.ToMarkdown(results, args, header);
                if (parse.GetValue(output) is { } file)
                {
                    await File.WriteAllTextAsync(file.FullName, markdown, ct).ConfigureAwait(false);
                }
                else
                {
                    Console.Out.Write(markdown);
                }

                return results.Where(r => r.Counted).All(r => r.Expected == r.Runs) ? 0 : 1;
            }
            finally
            {
                Directory.Delete(temp, recursive: true);
            }
        });
        return command;
    }

    private static async Task<int> RunRealClockAsync(string? folder, int runs, TimeSpan interval, string? filter, FileInfo? output, CancellationToken ct)
    {
        var cells = RealClockEvaluation.Matrix;
        if (filter is not null)
        {
            var parts = filter.Split(';', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
            cells = [.. cells.Where(c => parts.All(p => RealClockEvaluation.Describe(c).Contains(p, StringComparison.Ordinal)))];
            if (cells.Count == 0)
            {
                throw new ArgumentException($"--cells '{filter}' matches no real-clock cell; they read like '{RealClockEvaluation.Describe(RealClockEvaluation.Matrix[^1])}'.");
            }
        }

        var card = Har.Inference.ModelCard.Load(BundledModels.Champion);
        var sessions = (folder is null ? Synthetic(card) : Hapt(folder, card, ct)).Select(s => s.Frames).ToList();
        var results = new List<RealClockEvaluation.Run>();
        foreach (var (inFlight, devices) in cells)
        {
            for (var i = 0; i < runs; i++)
            {
                var run = await RealClockEvaluation.RunOnceAsync(sessions, inFlight, devices, interval, TimeSpan.FromMinutes(10), ct).ConfigureAwait(false);
                results.Add(run);
                Console.Error.WriteLine(string.Create(CultureInfo.InvariantCulture, $"real clock, {inFlight} in flight, {devices} devices, run {i + 1}: {run.Phase}{(run.Promoted ? " (promoted)" : string.Empty)} after {run.Elapsed.TotalSeconds:0} s, {run.Windows:N0} windows{(run.Undecided.Length == 0 ? string.Empty : "; analyses not passed: " + run.Undecided)}{(run.Promoted ? string.Empty : "; last analysis: " + run.LastAnalysis)}"));
            }
        }

        var command = string.Create(CultureInfo.InvariantCulture, $"har rollout evaluate --real-clock --runs {runs} --interval {interval.TotalSeconds:0}{(filter is null ? string.Empty : $" --cells \"{filter}\"")}{(folder is null ? string.Empty : " --data <uci-hapt>")}");
        var markdown = RealClockEvaluation.ToMarkdown(results, command, interval);
        if (output is not null)
        {
            await File.WriteAllTextAsync(output.FullName, markdown, ct).ConfigureAwait(false);
        }
        else
        {
            Console.Out.Write(markdown);
        }

        return results.All(r => r.Promoted) ? 0 : 1;
    }

    /// <summary>The UCI HAPT test sessions with each frame's true activity, as an index of <paramref name="card"/>'s labels (-1: none, or one the card lacks).</summary>
    internal static List<RecordedSession> Hapt(string folder, ModelCard card, CancellationToken ct)
    {
        var names = SensorDataset.LoadLabelNames(folder);
        var index = card.Labels.Select((l, i) => (l, i)).ToDictionary(x => x.l, x => x.i, StringComparer.Ordinal);
        return [.. SensorDataset.Load(folder, "test", cancellationToken: ct).Select(s => new RecordedSession(
            string.Create(CultureInfo.InvariantCulture, $"subject{s.Subject}-session{s.Session}"),
            s.Samples,
            s.Labels.Select(l => l > 0 && l < names.Length && index.TryGetValue(names[l], out var i) ? i : -1).ToArray()))];
    }

    private static List<RecordedSession> Synthetic(ModelCard card)
    {
        var index = card.Labels.Select((l, i) => (l, i)).ToDictionary(x => x.l, x => x.i, StringComparer.Ordinal);
        return [.. SyntheticImu.Generate(1, 8, 240, "synthetic-test", firstSubject: 101).Select(s => new RecordedSession(
            s.Id,
            s.Samples,
            s.Labels.Select(l => l is not null && index.TryGetValue(l, out var i) ? i : -1).ToArray()))];
    }
}
