using System.Globalization;
using System.Text;

namespace Har.Deployment;

/// <summary>One traffic condition of the evaluation matrix.</summary>
/// <param name="InFlight">Requests in flight at once.</param>
/// <param name="Devices">Devices streaming.</param>
/// <param name="WindowsPerSecond">The fleet's windows per second.</param>
/// <param name="SmokeTestWindows">Whether the smoke test and calibration reference use known real windows.</param>
/// <param name="Labels">Whether ground-truth feedback arrives: <see cref="LabelShare"/> of the windows, <see cref="LabelDelay"/> late.</param>
internal sealed record EvaluationCell(int InFlight, int Devices, double WindowsPerSecond, bool SmokeTestWindows, bool Labels = false)
{
    /// <summary>The share of windows whose true activity is reported (issue 16: 10 %).</summary>
    public const double LabelShare = 0.10;

    /// <summary>How late the labels arrive (issue 16: one minute).</summary>
    public static readonly TimeSpan LabelDelay = TimeSpan.FromMinutes(1);

    public override string ToString() => string.Create(CultureInfo.InvariantCulture, $"{InFlight} in flight, {Devices} devices, {WindowsPerSecond:0.#} windows/s, {(SmokeTestWindows ? "smoke windows" : "no smoke windows")}, {(Labels ? "10 % labels" : "no labels")}");
}

/// <summary>One candidate of the evaluation: healthy, or with an injected fault.</summary>
/// <param name="Name">A short name, e.g. <c>errors-5%</c>.</param>
/// <param name="Fault">The fault.</param>
/// <param name="ErrorRate">The failing share under <see cref="SimulationFault.Errors"/>.</param>
/// <param name="LatencyFactor">The slowdown under <see cref="SimulationFault.Latency"/>.</param>
/// <param name="AccuracyDrop">How far below the champion's accuracy the candidate is under <see cref="SimulationFault.LessAccurate"/>.</param>
internal sealed record EvaluationCandidate(string Name, SimulationFault Fault, double ErrorRate = 0.2, double LatencyFactor = 3, double AccuracyDrop = 0.06)
{
    public bool Healthy => Fault == SimulationFault.None;

    /// <summary>Whether the fault can be seen in <paramref name="cell"/> at all: a less accurate model answers like a healthy one, only ground truth shows it.</summary>
    public bool Detectable(EvaluationCell cell) => Fault != SimulationFault.LessAccurate || cell.Labels;

    /// <summary>The candidates of issue 16's matrix.</summary>
    public static IReadOnlyList<EvaluationCandidate> All { get; } =
    [
        new("healthy", SimulationFault.None),
        new("errors-5%", SimulationFault.Errors, ErrorRate: 0.05),
        new("errors-20%", SimulationFault.Errors, ErrorRate: 0.20),
        new("service-time-3x", SimulationFault.Latency, LatencyFactor: 3),
        new("broken-normalization", SimulationFault.BrokenNormalization),
        new("permuted-labels", SimulationFault.PermutedLabels),
        new("less-accurate-6pt", SimulationFault.LessAccurate, AccuracyDrop: 0.06),
    ];
}

/// <summary>The outcome of the runs of one candidate in one cell.</summary>
internal sealed class EvaluationResult(EvaluationCell cell, EvaluationCandidate candidate)
{
    public EvaluationCell Cell => cell;

    public EvaluationCandidate Candidate => candidate;

    public int Runs { get; set; }

    public int Promoted { get; set; }

    public int RolledBack { get; set; }

    /// <summary>Faulty runs rolled back within two analysis intervals of the candidate first serving traffic.</summary>
    public int RolledBackWithinTwo { get; set; }

    public int WaitingForData { get; set; }

    public List<int> IntervalsAfterVisible { get; } = [];

    public Dictionary<string, int> DecidingGates { get; } = new(StringComparer.Ordinal);

    /// <summary>Gets, for each run that did not end as expected (healthy: promoted; faulty: rolled back), its seed, final status and last analysis.</summary>
    public List<string> Unexpected { get; } = [];

    /// <summary>Healthy: promoted. Faulty: rolled back within two intervals of the fault becoming visible.</summary>
    public int Expected => candidate.Healthy ? Promoted : RolledBackWithinTwo;

    /// <summary>Whether this cell can show the fault at all (<see cref="EvaluationCandidate.Detectable"/>); cells that cannot are reported, not counted.</summary>
    public bool Counted => candidate.Detectable(cell);
}

/// <summary>
/// Runs the rollout evaluation matrix on a prepared <see cref="RolloutSimulation"/> (real models' predictions,
/// real controller and analysis, virtual clock) and writes the outcome as Markdown.
/// </summary>
internal static class RolloutEvaluation
{
    /// <summary>The full matrix of issue 16: 1/8/64 in flight × 5/500 devices × 10/200 windows/s × with/without smoke-test windows × with/without labels.</summary>
    public static IReadOnlyList<EvaluationCell> FullMatrix { get; } =
        [.. from inFlight in new[] { 1, 8, 64 }
            from devices in new[] { 5, 500 }
            from rate in new[] { 10.0, 200 }
            from smoke in new[] { true, false }
            from labels in new[] { false, true }
            select new EvaluationCell(inFlight, devices, rate, smoke, labels)];

    public static async Task<List<EvaluationResult>> RunAsync(RolloutSimulation simulation, IEnumerable<EvaluationCell> cells, IEnumerable<EvaluationCandidate> candidates, int runs, int firstSeed, Action<EvaluationResult>? progress = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(simulation);
        ArgumentOutOfRangeException.ThrowIfLessThan(runs, 1);
        var results = new List<EvaluationResult>();
        var candidateList = candidates.ToList();
        foreach (var cell in cells)
        {
            foreach (var candidate in candidateList)
            {
                var result = new EvaluationResult(cell, candidate);
                for (var i = 0; i < runs; i++)
                {
                    var run = await simulation.RunAsync(
                        new SimulationScenario
                        {
                            Fault = candidate.Fault,
                            ErrorRate = candidate.ErrorRate,
                            LatencyFactor = candidate.LatencyFactor,
                            Seed = firstSeed + i,
                            Devices = cell.Devices,
                            WindowsPerSecond = cell.WindowsPerSecond,
                            InFlight = cell.InFlight,
                            SmokeTestWindows = cell.SmokeTestWindows,
                            AccuracyDrop = candidate.AccuracyDrop,
                            Feedback = cell.Labels ? SimulatedFeedback.Labels(EvaluationCell.LabelShare, EvaluationCell.LabelDelay) : null,
                        },
                        cancellationToken).ConfigureAwait(false);
                    result.Runs++;
                    result.Promoted += run.Promoted ? 1 : 0;
                    result.RolledBack += run.RolledBack ? 1 : 0;
                    result.WaitingForData += run.WaitingForData ? 1 : 0;
                    if (run.RolledBack && run.IntervalsAfterVisible is { } after)
                    {
                        result.IntervalsAfterVisible.Add(after);
                        result.RolledBackWithinTwo += after <= 2 ? 1 : 0;
                    }

                    if (candidate.Healthy ? !run.Promoted : !run.RolledBack)
                    {
                        result.Unexpected.Add(string.Create(CultureInfo.InvariantCulture, $"seed {firstSeed + i}: {run.Status.Phase} after {run.AnalysisIntervals} analyses ({run.Course}): {run.Status.Message} | last analysis: {run.Status.LastAnalysis}"));
                    }
                    else if (!candidate.Healthy && run.IntervalsAfterVisible > 2)
                    {
                        // Rolled back, but later than the acceptance allows.
                        result.Unexpected.Add(string.Create(CultureInfo.InvariantCulture, $"seed {firstSeed + i}: rolled back {run.IntervalsAfterVisible} intervals after the fault became visible ({run.Course}) | last analysis: {run.Status.LastAnalysis}"));
                    }

                    var deciding = run.RolledBack ? GateVerdict.Fail : GateVerdict.Inconclusive;
                    foreach (var gate in run.Status.LastAnalysis?.Gates ?? [])
                    {
                        if (gate.Verdict == deciding || (!run.RolledBack && !run.Promoted && gate.Verdict == GateVerdict.Unmeasurable))
                        {
                            result.DecidingGates[gate.Gate] = result.DecidingGates.GetValueOrDefault(gate.Gate) + 1;
                        }
                    }
                }

                results.Add(result);
                progress?.Invoke(result);
            }
        }

        return results;
    }

    /// <summary>The results as a Markdown report: one table per candidate, one row per cell.</summary>
    public static string ToMarkdown(IReadOnlyList<EvaluationResult> results, string command, string header)
    {
        var inv = CultureInfo.InvariantCulture;
        var md = new StringBuilder();
        md.AppendLine("# Rollout evaluation").AppendLine();
        md.AppendLine(header).AppendLine();
        md.AppendLine(inv, $"Command: `{command}`").AppendLine();
        md.AppendLine("Healthy: promoted. Faulty: rolled back within two analysis intervals of the candidate first serving traffic")
            .AppendLine("(the fault becoming visible). \"paused\" = waiting for data when the run's interval budget ended; \"deciding gates\"")
            .AppendLine("= the failing gates of the last analysis for rollbacks, the undecided ones otherwise.").AppendLine();
        foreach (var group in results.GroupBy(r => r.Candidate.Name))
        {
            var first = group.First();
            var counted = group.Where(r => r.Counted).ToList();
            var total = counted.Sum(r => r.Runs);
            var ok = counted.Sum(r => r.Expected);
            var uncounted = group.Where(r => !r.Counted).ToList();
            var note = uncounted.Count == 0 ? string.Empty : string.Create(inv, $"; in the {uncounted.Count} cells without labels nothing can see it (promoted {uncounted.Sum(r => r.Promoted)} of {uncounted.Sum(r => r.Runs)}, not counted)");
            md.AppendLine(inv, $"## {group.Key}: {ok}/{total} as expected ({(first.Candidate.Healthy ? "promoted" : "rolled back within 2 intervals")}{note})").AppendLine();
            md.AppendLine("| in flight | devices | windows/s | smoke windows | labels | runs | promoted | rolled back | within 2 | paused | intervals after visible (median / max) | deciding gates |");
            md.AppendLine("|---:|---:|---:|:---:|:---:|---:|---:|---:|---:|---:|---|---|");
            foreach (var r in group)
            {
                var after = r.IntervalsAfterVisible.Order().ToList();
                var intervals = after.Count == 0 ? "-" : string.Create(inv, $"{after[after.Count / 2]} / {after[^1]}");
                var gates = r.DecidingGates.Count == 0 ? "-" : string.Join(", ", r.DecidingGates.OrderByDescending(g => g.Value).Select(g => string.Create(inv, $"{g.Key} {g.Value}")));
                md.AppendLine(inv, $"| {r.Cell.InFlight} | {r.Cell.Devices} | {r.Cell.WindowsPerSecond:0.#} | {(r.Cell.SmokeTestWindows ? "yes" : "no")} | {(r.Cell.Labels ? "10 %" : "no")} | {r.Runs} | {r.Promoted} | {r.RolledBack} | {(r.Candidate.Healthy ? "-" : r.RolledBackWithinTwo.ToString(inv))} | {r.WaitingForData} | {intervals} | {gates} |");
            }

            md.AppendLine();
        }

        return md.ToString();
    }
}
