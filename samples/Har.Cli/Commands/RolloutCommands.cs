using System.CommandLine;
using System.Globalization;
using System.Text.Json;
using Har.Inference;
using Har.Deployment;

namespace Har.Cli.Commands;

/// <summary><c>har rollout …</c>: start and steer rollouts against a registry directory, and simulate them on real data.</summary>
internal static class RolloutCommands
{
    public static Command Create()
    {
        var command = new Command("rollout", "Start, inspect and steer model rollouts (canary, blue-green, shadow, recreate) with automatic analysis and rollback; simulate them on recorded data.")
        {
            Start(),
            Status(),
            Simulate(),
            RolloutEvaluateCommand.Create(),
        };
        foreach (var kind in new[] { RolloutCommandKind.Approve, RolloutCommandKind.Promote, RolloutCommandKind.Pause, RolloutCommandKind.Resume, RolloutCommandKind.Abort, RolloutCommandKind.Rollback, RolloutCommandKind.Incident })
        {
            command.Subcommands.Add(Steer(kind));
        }

        return WrapErrors(command);
    }

    /// <summary>Turns the registry's and controller's expected refusals into one line and exit code 2 (conflicts: 3).</summary>
    internal static Command WrapErrors(Command command)
    {
        foreach (var sub in command.Subcommands)
        {
            if (sub.Action is System.CommandLine.Invocation.AsynchronousCommandLineAction inner)
            {
                sub.SetAction(async (parse, ct) =>
                {
                    try
                    {
                        return await inner.InvokeAsync(parse, ct).ConfigureAwait(false);
                    }
                    catch (Exception ex) when (ex is KeyNotFoundException or ModelIntegrityException or RolloutCommandRejectedException or RolloutConflictException or InvalidOperationException)
                    {
                        await Console.Error.WriteLineAsync($"har: {CliWords(ex.Message)}").ConfigureAwait(false);
                        return ex is RolloutConflictException ? 3 : 2;
                    }
                });
            }
        }

        return command;
    }

    /// <summary>A controller refusal in the command line's words: the library names its options, a CLI user passes flags.</summary>
    internal static string CliWords(string message) => message
        .Replace("(RolloutControllerOptions.StarterMayApprove allows it)", "(a rollout started with --starter-may-approve allows it)", StringComparison.Ordinal)
        .Replace("(MinCandidateAccuracy)", "(--min-accuracy)", StringComparison.Ordinal)
        .Replace("(MinCandidateMacroF1)", "(--min-macro-f1)", StringComparison.Ordinal);

    private static Option<string> ActorOption() => new("--actor") { Description = "Who sends the command (default: the OS user).", DefaultValueFactory = _ => Environment.UserName };

    private static Option<string> ReasonOption() => new("--reason") { Description = "Why (recorded in the audit log).", DefaultValueFactory = _ => "via har rollout" };

    private static Option<RolloutPhase?> ExpectOption() => new("--expect-phase") { Description = "Refuse (conflict) unless the rollout is in this phase." };

    private static Option<long?> RevisionOption() => new("--expect-revision") { Description = "Refuse (conflict) unless the rollout is at this revision." };

    // Gate evidence may hold NaN (e.g. a rate with no requests); phases and verdicts print as names.
    private static readonly JsonSerializerOptions StatusJson = new(CliJson.Indented)
    {
        NumberHandling = System.Text.Json.Serialization.JsonNumberHandling.AllowNamedFloatingPointLiterals,
        Converters = { new System.Text.Json.Serialization.JsonStringEnumConverter() },
    };

    private static Command Start()
    {
        var registry = ModelsCommands.RegistryOption();
        var audit = ModelsCommands.AuditOption();
        var candidate = new Option<string>("--candidate") { Description = "The registered version to roll out, e.g. v1.1.0.", Required = true };
        var strategy = new Option<string>("--strategy") { Description = "canary, blue-green, shadow or recreate.", DefaultValueFactory = _ => RolloutStrategyNames.Canary };
        strategy.AcceptOnlyFromAmong(RolloutStrategyNames.Canary, RolloutStrategyNames.BlueGreen, RolloutStrategyNames.Shadow, RolloutStrategyNames.Recreate);
        var (actor, reason, expect) = (ActorOption(), ReasonOption(), ExpectOption());
        var requireApproval = new Option<bool>("--require-approval") { Description = "A person must approve before a canary is promoted and before the blue-green switch (har rollout approve)." };
        var approvals = new Option<int>("--approvals") { Description = "Distinct approvers each approval step needs (one person cannot approve twice).", DefaultValueFactory = _ => 1 }
            .InRange(1, int.MaxValue, "each approval step needs at least one person");
        var minAccuracy = new Option<double?>("--min-accuracy") { Description = "Compliance gate: refuse a candidate whose model card records a lower test accuracy (0–1)." }
            .InRange(0, 1, "a fraction, e.g. 0.93 for 93 %");
        var minF1 = new Option<double?>("--min-macro-f1") { Description = "Compliance gate: refuse a candidate whose model card records a lower macro-F1 (0–1)." }
            .InRange(0, 1, "a fraction, e.g. 0.9");
        var canaryShadow = new Option<double>("--canary-shadow") { Description = "Percent of the champion's streams whose windows a canary candidate also scores as a shadow (0–100; 0 judges it on its own share only).", DefaultValueFactory = _ => 100 };
        canaryShadow.Validators.Add(r =>
        {
            if (!r.Tokens.Any(t => t.Value.Contains(',', StringComparison.Ordinal)) && OptionRanges.TryGetValue(r, out double v) && !(v >= 0 && v <= 100))
            {
                r.AddError($"--canary-shadow is {v}; expected a percent from 0 to 100.");
            }
        });
        var starterMayApprove = new Option<bool>("--starter-may-approve") { Description = "Let the starter (--actor) be one of the approvers; by default they cannot approve their own rollout." };
        var command = new Command("start", "Verify, load and warm the candidate, then apply the strategy's first steps.") { registry, audit, candidate, strategy, actor, reason, expect, requireApproval, approvals, minAccuracy, minF1, starterMayApprove, canaryShadow };
        command.SetAction(async (parse, ct) =>
        {
            await using var log = ModelsCommands.OpenExistingAudit(parse.GetValue(registry)!, parse.GetValue(audit));
            var reg = new ModelRegistry(ModelsCommands.ExistingRegistry(parse.GetValue(registry)!), log);
            await using var pipeline = OpenPipeline(reg);
            var options = new RolloutControllerOptions
            {
                RequiredApprovals = parse.GetValue(approvals),
                MinCandidateAccuracy = parse.GetValue(minAccuracy),
                MinCandidateMacroF1 = parse.GetValue(minF1),
                StarterMayApprove = parse.GetValue(starterMayApprove),
            };
            options.BuiltInStrategies.RequireApproval = parse.GetValue(requireApproval);
            options.BuiltInStrategies.CanaryShadowPercent = parse.GetValue(canaryShadow);
            await using var controller = await RolloutController.OpenAsync(reg, pipeline, options, cancellationToken: ct).ConfigureAwait(false);
            var status = await controller.ExecuteAsync(
                RolloutCommand.Start(parse.GetValue(candidate)!, parse.GetValue(strategy)!, parse.GetValue(actor)!, parse.GetValue(reason)!) with { ExpectedPhase = parse.GetValue(expect) },
                ct).ConfigureAwait(false);
            Print(status);

            // Started but ended at once (the candidate would not load, its smoke test failed): a check failed.
            return status.Phase is RolloutPhase.Failed or RolloutPhase.RolledBack ? 1 : 0;
        });
        return command;
    }

    /// <summary>
    /// The pipeline the rollout commands steer, keeping the longest context any registered version reads: a candidate
    /// that reads the stream before each window (the bundled 1.2.0 reads 200 frames) is then started beside a champion
    /// that does not. With the pipeline's default (the current version's context), `har rollout start --candidate 1.2.0`
    /// was refused with "open it with ServingOptions.ContextFrames = 200", a setting no option of har reaches. A version
    /// whose card does not load counts as 0 here; the controller's verification says what is wrong with it.
    /// </summary>
    private static ServingPipeline OpenPipeline(ModelRegistry registry)
    {
        var context = 0;
        foreach (var version in registry.List())
        {
            try
            {
                context = Math.Max(context, ModelCard.Load(version.ModelPath).ContextFrames);
            }
            catch (Exception ex) when (ex is ModelCardException or IOException or UnauthorizedAccessException)
            {
                // Verified, and refused with its reason, when it is rolled out or back to.
            }
        }

        return ServingPipeline.Open(registry, new ServingOptions { ContextFrames = context });
    }

    private static Command Status()
    {
        var registry = ModelsCommands.RegistryOrFleetOption();
        var connection = AuditCommands.ConnectionOption("The fleet's PostgreSQL connection string (read when --registry is not given): the rollout every replica follows, the current pointer and the controller lease.");
        var json = new Option<bool>("--json") { Description = "Print JSON: the rollout's status (null before the first rollout of a registry folder)." };
        var command = new Command("status", "Print the current rollout's persisted status: of a registry folder (--registry), or of a fleet in PostgreSQL (--connection or $" + AuditCommands.ConnectionEnvironmentVariable + ").") { registry, connection, json };
        command.SetAction(parse =>
        {
            RolloutStatus? status;
            string current;
            string? leader = null;
            int? replicas = null;
            if (parse.GetValue(registry) is { } dir)
            {
                status = RolloutController.ReadStatus(Path.Combine(ModelsCommands.ExistingRegistry(dir), ".rollout"));
                current = new ModelRegistry(dir.FullName).CurrentVersion ?? "none";
            }
            else
            {
                using var store = ModelsCommands.OpenFleet(parse.GetValue(connection));
                status = RolloutController.ReadStatus(store);
                current = store.ReadHead().Current ?? "none";
                leader = store.ReadLease() is { } lease
                    ? string.Create(CultureInfo.InvariantCulture, $"{lease.Holder} (term {lease.Term}, {(lease.Valid ? "lease valid until" : "lease expired at")} {lease.ExpiresAt:u})")
                    : "none yet";
                replicas = store.SchemaVersion >= 4 ? store.CountLiveReplicas() : null; // heartbeats: schema version 4 on
            }

            if (parse.GetValue(json) && leader is not null)
            {
                // A fleet: the rollout with what every replica shares beside it.
                Console.Out.WriteLine(JsonSerializer.Serialize(new Dictionary<string, object?> { ["rollout"] = status, ["current"] = current, ["leader"] = leader, ["live_replicas"] = replicas }, StatusJson));
                return 0;
            }

            if (parse.GetValue(json) && status is not null)
            {
                Console.Out.WriteLine(JsonSerializer.Serialize(status, StatusJson));
                return 0;
            }

            if (parse.GetValue(json) && status is null)
            {
                // No rollout yet: --json still prints JSON (the text line below broke `| jq`), the status a rollout would have.
                Console.Out.WriteLine("null");
                return 0;
            }

            if (status is null)
            {
                Console.Out.WriteLine($"no rollout yet; current version: {current}");
            }
            else
            {
                Print(status);
                if (leader is not null)
                {
                    Console.Out.WriteLine($"  current   {current}");
                }
            }

            if (leader is not null)
            {
                Console.Out.WriteLine($"  leader    {leader}");
                Console.Out.WriteLine(replicas is { } live ? string.Create(CultureInfo.InvariantCulture, $"  replicas  {live} live (heartbeat within the lease duration)") : "  replicas  unknown (the fleet's schema predates heartbeats)");
            }

            return 0;
        });
        return command;
    }

    private static Command Steer(RolloutCommandKind kind)
    {
        var registry = ModelsCommands.RegistryOption();
        var audit = ModelsCommands.AuditOption();
        var (actor, reason, expect, revision) = (ActorOption(), ReasonOption(), ExpectOption(), RevisionOption());
        var name = kind.ToString().ToLowerInvariant();
        var command = new Command(name, Describe(kind)) { registry, audit, actor, reason, expect, revision };
        var to = new Option<string?>("--to") { Description = "The version to restore: the champion by default, or an earlier registered version that verifies against the audit log (e.g. 1.0.0)." };
        var summary = new Option<string?>("--summary") { Description = "The incident report's summary: what happened." };
        var cause = new Option<string?>("--cause") { Description = "The incident report's cause, as the operator found it." };
        var actions = new Option<string?>("--actions") { Description = "The incident report's actions taken or to take." };
        var rolloutId = new Option<string?>("--rollout") { Description = "The rolled-back rollout whose report to complete (default: the current one)." };
        if (kind is RolloutCommandKind.Rollback or RolloutCommandKind.Incident)
        {
            command.Options.Add(summary);
            command.Options.Add(cause);
            command.Options.Add(actions);
            command.Options.Add(kind == RolloutCommandKind.Rollback ? to : rolloutId);
        }

        command.SetAction(async (parse, ct) =>
        {
            await using var log = ModelsCommands.OpenExistingAudit(parse.GetValue(registry)!, parse.GetValue(audit));
            var reg = new ModelRegistry(ModelsCommands.ExistingRegistry(parse.GetValue(registry)!), log);
            await using var pipeline = OpenPipeline(reg);
            await using var controller = await RolloutController.OpenAsync(reg, pipeline, cancellationToken: ct).ConfigureAwait(false);
            try
            {
                var status = await controller.ExecuteAsync(
                    RolloutCommand.Create(kind, parse.GetValue(actor)!, parse.GetValue(reason)!) with
                    {
                        ExpectedPhase = parse.GetValue(expect),
                        ExpectedRevision = parse.GetValue(revision),
                        RollbackTo = parse.GetValue(to),
                        RolloutId = parse.GetValue(rolloutId),
                        IncidentSummary = parse.GetValue(summary),
                        IncidentCause = parse.GetValue(cause),
                        IncidentActions = parse.GetValue(actions),
                    },
                    ct).ConfigureAwait(false);
                Print(status);
                if (kind is RolloutCommandKind.Rollback or RolloutCommandKind.Incident)
                {
                    Console.Out.WriteLine($"  incident  incident-{parse.GetValue(rolloutId) ?? status.RolloutId} (har audit query --log <audit> --entity-id {parse.GetValue(rolloutId) ?? status.RolloutId} --event-type rollout.incident)");
                }

                return 0;
            }
            catch (Exception ex) when (ex is RolloutConflictException or RolloutCommandRejectedException)
            {
                await Console.Error.WriteLineAsync($"har: {CliWords(ex.Message)}").ConfigureAwait(false);
                return 3;
            }
        });
        return command;
    }

    private static Command Simulate()
    {
        var data = new Option<DirectoryInfo?>("--data") { Description = "The UCI HAPT folder (default: ../shared/data/uci-hapt); its test subjects' sessions are replayed." };
        var candidate = new Option<string>("--candidate") { Description = "The candidate version.", DefaultValueFactory = _ => BundledModels.CandidateVersion };
        var fault = new Option<string>("--fault") { Description = "none, errors (20 % of the candidate's requests fail), latency (3×), broken-normalization, permuted-labels (the candidate's classes shifted by one) or less-accurate (6 points below the champion, otherwise agreeing with it: only --labels can show it).", DefaultValueFactory = _ => "none" };
        fault.AcceptOnlyFromAmong("none", "errors", "latency", "broken-normalization", "permuted-labels", "less-accurate");
        var labels = new Option<double>("--labels") { Description = "Share of the served windows whose true activity (the HAPT label) is reported as feedback, 0 to 1, e.g. 0.1 (the evaluation matrix's labelled cells); it feeds the accuracy gate. 0: no labels.", DefaultValueFactory = _ => 0 };
        labels.Validators.Add(r =>
        {
            if (r.GetValue(labels) is var v && (v < 0 || v > 1 || double.IsNaN(v)))
            {
                r.AddError($"--labels {v.ToString(CultureInfo.InvariantCulture)} is not a share; expected 0 to 1 (e.g. 0.1 for one window in ten).");
            }
        });
        var labelDelay = new Option<TimeSpan>("--label-delay") { Description = "How long after a window is served its label arrives (hh:mm:ss).", DefaultValueFactory = _ => TimeSpan.FromMinutes(1) };
        labelDelay.Validators.Add(r =>
        {
            if (r.GetValue(labelDelay) is var d && (d < TimeSpan.Zero || d > TimeSpan.FromHours(1)))
            {
                r.AddError($"--label-delay {d} is out of range; expected 00:00:00 to 01:00:00.");
            }
        });
        var registry = new Option<DirectoryInfo?>("--registry") { Description = "A registry whose current version is the champion (default: a temporary one with the bundled models 1.0.0 and 1.2.0)." };
        var strategy = new Option<string>("--strategy") { Description = "The strategy.", DefaultValueFactory = _ => RolloutStrategyNames.Canary };
        var seed = new Option<int>("--seed") { Description = "The first seed.", DefaultValueFactory = _ => 1 };
        var runs = new Option<int>("--runs") { Description = "How many seeded runs, 1 to 1,000 (decisions are printed for a single run, a summary for several).", DefaultValueFactory = _ => 1 }
            .InRange(1, 1_000, "each run is a whole rollout (the evaluation matrix runs 100 per cell)");
        var devices = new Option<int>("--devices") { Description = "Simulated devices, 1 to 100,000.", DefaultValueFactory = _ => 200 }
            .InRange(1, 100_000, "the traffic of every device is simulated in each interval (the evaluation matrix uses 5 and 500)");
        var command = new Command("simulate", "Replay real HAPT streams through the real models on a virtual clock and print the rollout's decisions.") { data, candidate, fault, labels, labelDelay, registry, strategy, seed, runs, devices };
        command.SetAction(async (parse, ct) =>
        {
            var existing = parse.GetValue(registry) is { } dir ? ModelsCommands.ExistingRegistry(dir) : null;
            var folder = parse.GetValue(data)?.FullName ?? SharedData.FindHapt()
                ?? throw new DirectoryNotFoundException("No --data folder given and ../shared/data/uci-hapt was not found; pass --data <folder> in the UCI HAPT layout.");
            string? temp = null;
            ModelRegistry reg;
            if (existing is not null)
            {
                reg = new ModelRegistry(existing);
            }
            else
            {
                temp = Directory.CreateTempSubdirectory("har-sim-registry-").FullName;
                reg = new ModelRegistry(temp);
                reg.Register(BundledModels.Champion);
                reg.Register(BundledModels.Candidate);
            }

            try
            {
                // With each frame's true activity (in the champion's label order): the accuracy gate's labels come from it.
                var current = reg.CurrentVersion ?? throw new InvalidOperationException("The registry has no current version: register the champion first (har models register).");
                var streams = RolloutEvaluateCommand.Hapt(folder, ModelCard.Load(reg.Get(current).ModelPath), ct);
                await using var simulation = await RolloutSimulation.PrepareAsync(reg, parse.GetValue(candidate)!, streams, cancellationToken: ct).ConfigureAwait(false);
                var inv = CultureInfo.InvariantCulture;
                Console.Out.WriteLine(string.Create(inv, $"champion {simulation.Champion} vs candidate {simulation.Candidate}: {simulation.Windows} test windows from {streams.Count} sessions scored by both models in {simulation.PreparationTime.TotalSeconds:0.0} s; agreement {simulation.HealthyAgreement:P1} (broken normalization: {simulation.BrokenAgreement:P1}); p95 single-window latency {simulation.ChampionLatencyP95.TotalMilliseconds:0.###} ms vs {simulation.CandidateLatencyP95.TotalMilliseconds:0.###} ms"));
                var faultKind = parse.GetValue(fault) switch
                {
                    "errors" => SimulationFault.Errors,
                    "latency" => SimulationFault.Latency,
                    "broken-normalization" => SimulationFault.BrokenNormalization,
                    "permuted-labels" => SimulationFault.PermutedLabels,
                    "less-accurate" => SimulationFault.LessAccurate,
                    _ => SimulationFault.None,
                };
                var share = parse.GetValue(labels);
                var feedback = share > 0 ? SimulatedFeedback.Labels(share, parse.GetValue(labelDelay)) : null;
                if (faultKind == SimulationFault.LessAccurate && feedback is null)
                {
                    Console.Out.WriteLine("note: without --labels a less accurate candidate that agrees with the champion elsewhere shows nothing the analysis can see; add --labels 0.1 to give the accuracy gate ground truth.");
                }
                var n = parse.GetValue(runs);
                int promoted = 0, rolledBack = 0, other = 0;
                var intervals = new List<int>();
                for (var i = 0; i < n; i++)
                {
                    var result = await simulation.RunAsync(new SimulationScenario { Fault = faultKind, Seed = parse.GetValue(seed) + i, Strategy = parse.GetValue(strategy)!, Devices = parse.GetValue(devices), Feedback = feedback }, ct).ConfigureAwait(false);
                    if (n == 1)
                    {
                        foreach (var d in result.Decisions)
                        {
                            Console.Out.WriteLine(string.Create(inv, $"{d.At:HH:mm:ss}  {d.EventType,-19} {d.Summary}"));
                        }
                    }

                    promoted += result.Promoted ? 1 : 0;
                    rolledBack += result.RolledBack ? 1 : 0;
                    other += result.Promoted || result.RolledBack ? 0 : 1;
                    if (result.RolledBack)
                    {
                        intervals.Add(result.AnalysisIntervals);
                    }

                    if (n == 1)
                    {
                        Console.Out.WriteLine(string.Create(inv, $"outcome: {result.Status.Phase}{(result.Promoted ? " (promoted)" : string.Empty)} after {result.AnalysisIntervals} analysis intervals ({result.Elapsed.TotalMinutes:0} virtual minutes)"));
                    }
                }

                if (n > 1)
                {
                    Console.Out.WriteLine(string.Create(inv, $"{n} runs, fault {parse.GetValue(fault)}{(feedback is null ? string.Empty : $", labels {share:P0} after {parse.GetValue(labelDelay)}")}: promoted {promoted}, rolled back {rolledBack}, other {other}; analysis intervals to rollback: max {(intervals.Count == 0 ? "-" : intervals.Max().ToString(inv))}, mean {(intervals.Count == 0 ? "-" : intervals.Average().ToString("0.00", inv))}"));
                }

                return 0;
            }
            finally
            {
                if (temp is not null)
                {
                    Directory.Delete(temp, recursive: true);
                }
            }
        });
        return command;
    }

    private static string Describe(RolloutCommandKind kind) => kind switch
    {
        RolloutCommandKind.Approve => "Approve a rollout waiting at an approval gate.",
        RolloutCommandKind.Promote => "Skip the remaining steps and promote the candidate now (pre-promotion hooks still run).",
        RolloutCommandKind.Pause => "Pause a progressing rollout (no analysis until resumed).",
        RolloutCommandKind.Resume => "Resume a paused rollout.",
        RolloutCommandKind.Abort => "Stop the rollout and send all traffic back to the champion.",
        RolloutCommandKind.Incident => "Complete the incident report of a rolled-back rollout (summary, cause, actions); each update is a new audit record.",
        _ => "Roll the candidate back in six audited steps to the champion, or --to an earlier verified version (also after promotion); --summary/--cause/--actions start the incident report.",
    };

    private static void Print(RolloutStatus s)
    {
        var inv = CultureInfo.InvariantCulture;
        Console.Out.WriteLine(string.Create(inv, $"rollout {s.RolloutId} ({s.Strategy}): {s.Champion} -> {s.Candidate}"));
        Console.Out.WriteLine(string.Create(inv, $"  phase     {s.Phase}{(s.PausedFrom is { } p ? $" (from {p})" : string.Empty)}, revision {s.Revision}{(s.Promoted ? ", promoted" : string.Empty)}"));
        Console.Out.WriteLine(string.Create(inv, $"  traffic   candidate {s.CandidatePercent:0.##}%, shadow {s.ShadowPercent:0.##}%"));
        Console.Out.WriteLine(string.Create(inv, $"  step      {s.StepIndex}/{s.Steps.Count}{(s.CurrentStep is { } step ? $": {step}" : string.Empty)}"));
        Console.Out.WriteLine(string.Create(inv, $"  analysis  {s.AnalysesRun} intervals, {s.ConsecutivePasses} consecutive passes, {s.Failures} failures{(s.NextAnalysisAt is { } next ? $", next at {next:u}" : string.Empty)}"));
        Console.Out.WriteLine($"  message   {s.Message}");
        if (s.LastAnalysis is { } a)
        {
            // Why: the last interval's verdict, sample counts and every gate with its evidence.
            Console.Out.WriteLine(string.Create(inv, $"  last analysis {a.Verdict} ({a.Start:u} – {a.End:u}): candidate {a.CandidateRequests} requests, stable {a.StableRequests}, paired {a.PairedWindows}"));
            foreach (var g in a.Gates)
            {
                Console.Out.WriteLine(string.Create(inv, $"    {g.Gate,-16} {g.Verdict,-12} {g.Message}"));
                if (g.Evidence.Count > 0)
                {
                    Console.Out.WriteLine(string.Create(inv, $"    {string.Empty,-16} {string.Join(", ", g.Evidence.Select(kv => $"{kv.Key}={kv.Value:G4}"))}"));
                }
            }
        }
    }
}
