using System.Diagnostics;
using System.Globalization;
using System.Text.Json.Nodes;
using Har.Audit;
using Har.Inference;
using Microsoft.Extensions.Logging;

namespace Har.Deployment;

/// <summary>
/// Replays recorded device streams through a real rollout on a virtual clock. Preparation loads the
/// champion (the registry's current version) and the candidate as real ONNX sessions, windows every
/// stream with the models' card, and scores every window once with each model (and, for the
/// broken-normalization fault, the candidate once more on un-normalized input), and measures both
/// models' real single-window latencies (interleaved on the same windows, fastest of three per
/// window). Each run then drives a real <see cref="RolloutController"/>:
/// devices are routed by its router, their windows' precomputed predictions and sampled latencies
/// (with the injected fault) feed its observations, and the clock advances one analysis interval at a
/// time — so hundreds of rollouts take seconds.
/// </summary>
/// <remarks>
/// When the registry given to <see cref="PrepareAsync"/> has an audit log
/// (<see cref="ModelRegistry(string, AuditLog, TimeProvider)"/>), every run is audited the way the
/// controller audits a real rollout: the start command, each transition, step and analysis verdict (with
/// its gates' evidence) and the rollback (also as a rollback record) go through the controller's outbox
/// to the log. Each event is marked <c>"simulated": true</c> and carries the run's <c>virtual_time</c>;
/// its timestamp is the wall-clock time it was written, so the log stays in time order. Entities are the
/// runs' rollout ids (<c>sim-{fault}-{seed}</c>).
/// </remarks>
internal sealed class RolloutSimulation : IAsyncDisposable
{
    private const int LatencySamples = 300;
    private const int LatencyRepeats = 3;

    private readonly RolloutControllerOptions _options;
    private readonly HarModelHost _models;
    private readonly string _scratch;
    private readonly ModelRegistry _registry;
    private readonly Outputs _champion;
    private readonly Outputs _candidate;
    private readonly Outputs _candidateBroken;
    private readonly int[] _streamStart;
    private readonly int[] _streamWindows;
    private readonly ILoggerFactory? _loggerFactory;
    private readonly IDeploymentAuditSink? _audit;

    private RolloutSimulation(RolloutControllerOptions options, HarModelHost models, string scratch, ModelRegistry registry, string champion, string candidate, Outputs championOut, Outputs candidateOut, Outputs brokenOut, int[] streamStart, int[] streamWindows, ILoggerFactory? loggerFactory, IDeploymentAuditSink? audit)
    {
        _options = options;
        _models = models;
        _scratch = scratch;
        _registry = registry;
        Champion = champion;
        Candidate = candidate;
        _champion = championOut;
        _candidate = candidateOut;
        _candidateBroken = brokenOut;
        _streamStart = streamStart;
        _streamWindows = streamWindows;
        _loggerFactory = loggerFactory;
        _audit = audit;
    }

    /// <summary>Gets the champion version (the registry's current version).</summary>
    public string Champion { get; }

    /// <summary>Gets the candidate version.</summary>
    public string Candidate { get; }

    /// <summary>Gets the number of windows scored per model.</summary>
    public int Windows => _champion.Labels.Length;

    /// <summary>Gets the share of windows on which the healthy candidate predicts the champion's class.</summary>
    public double HealthyAgreement => Agreement(_candidate);

    /// <summary>Gets the share of windows on which the candidate with broken normalization predicts the champion's class.</summary>
    public double BrokenAgreement => Agreement(_candidateBroken);

    /// <summary>Gets the champion's measured p95 single-window latency.</summary>
    public TimeSpan ChampionLatencyP95 => _champion.BaselineP95;

    /// <summary>Gets the candidate's measured p95 single-window latency.</summary>
    public TimeSpan CandidateLatencyP95 => _candidate.BaselineP95;

    /// <summary>Gets the wall time preparation took.</summary>
    public TimeSpan PreparationTime { get; private set; }

    /// <summary>Loads the models, windows the streams and scores every window once per model.</summary>
    /// <param name="registry">The registry holding the champion (its current version) and the candidate; when it has an audit log, every run's decisions are written to it.</param>
    /// <param name="candidate">The candidate version.</param>
    /// <param name="streams">The recorded streams to replay (e.g. the HAPT test sessions).</param>
    /// <param name="options">The controller options each run uses (analysis thresholds, strategies); <see langword="null"/> for the defaults.</param>
    /// <param name="loggerFactory">Where log messages go.</param>
    /// <param name="cancellationToken">Cancels preparation.</param>
    /// <returns>The prepared simulation; dispose it to unload the models and delete its scratch registry.</returns>
    public static async Task<RolloutSimulation> PrepareAsync(ModelRegistry registry, string candidate, IEnumerable<RecordedSession> streams, RolloutControllerOptions? options = null, ILoggerFactory? loggerFactory = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(registry);
        ArgumentNullException.ThrowIfNull(streams);
        var started = Stopwatch.GetTimestamp();
        options ??= new RolloutControllerOptions();
        var champion = registry.CurrentVersion ?? throw new InvalidOperationException($"The registry '{registry.Root}' has no current version; the simulation's champion is the current version.");
        candidate = registry.Get(candidate).Version;
        if (candidate == champion)
        {
            throw new ArgumentException($"Version {candidate} is the current version; expected a different candidate.", nameof(candidate));
        }

        // A scratch copy of the two versions, so promotions in simulated runs never move the real registry's pointer.
        var scratch = Directory.CreateTempSubdirectory("har-rollout-sim-").FullName;
        var scratchRegistry = new ModelRegistry(Path.Combine(scratch, "registry"));
        foreach (var version in new[] { champion, candidate })
        {
            var source = registry.ReadVerified(version, "simulate");
            var target = Path.Combine(scratchRegistry.Root, "v" + version);
            Directory.CreateDirectory(target);
            foreach (var file in new[] { ModelRegistry.ModelFileName, ModelRegistry.ConfigFileName, ModelRegistry.RecordFileName })
            {
                File.Copy(Path.Combine(source.Model.Directory, file), Path.Combine(target, file));
            }
        }

        scratchRegistry.SetCurrent(champion);
        var host = new HarModelHost(new HarModelOptions { EnableMetrics = false, MaxBatchWait = TimeSpan.Zero, UseGlobalThreadPool = false, IntraOpThreads = 1 }, loggerFactory, TimeProvider.System);
        try
        {
            await host.LoadAsync(scratchRegistry.ReadVerified(champion, "simulate"), cancellationToken).ConfigureAwait(false);
            await host.LoadAsync(scratchRegistry.ReadVerified(candidate, "simulate"), cancellationToken).ConfigureAwait(false);
            var championModel = host.GetModel(champion);
            var candidateModel = host.GetModel(candidate);
            var card = championModel.Card;
            if (candidateModel.Card.WindowLength != card.WindowLength || candidateModel.Card.ChannelCount != card.ChannelCount || candidateModel.Card.ClassCount != card.ClassCount)
            {
                throw new InvalidOperationException($"Champion {card} and candidate {candidateModel.Card} disagree on window length, channels or classes; a rollout between them cannot compare predictions.");
            }

            // Window every stream from frame 0 with the card's length and stride.
            var values = card.WindowLength * card.ChannelCount;
            var windows = new List<float>();
            var starts = new List<int>();
            var counts = new List<int>();
            foreach (var stream in streams)
            {
                var frames = stream.Frames.Span;
                if (frames.Length % card.ChannelCount != 0)
                {
                    throw new ArgumentException($"Stream '{stream.Id}' holds {frames.Length} values, not a whole number of {card.ChannelCount}-channel frames.", nameof(streams));
                }

                var n = frames.Length / card.ChannelCount;
                var count = n < card.WindowLength ? 0 : ((n - card.WindowLength) / card.Stride) + 1;
                if (count == 0)
                {
                    continue;
                }

                starts.Add(windows.Count / values);
                counts.Add(count);
                for (var w = 0; w < count; w++)
                {
                    windows.AddRange(frames.Slice(w * card.Stride * card.ChannelCount, values));
                }
            }

            if (counts.Count == 0)
            {
                throw new ArgumentException($"No stream is long enough for one window of {card.WindowLength} frames.", nameof(streams));
            }

            var all = windows.ToArray();
            var broken = new float[all.Length];
            var mean = candidateModel.Card.NormalizationMean;
            var std = candidateModel.Card.NormalizationStd;
            for (var i = 0; i < all.Length; i++)
            {
                // (x' − mean) / std = x: the network sees raw sensor units, as if normalization were skipped.
                var c = i % card.ChannelCount;
                broken[i] = (all[i] * std[c]) + mean[c];
            }

            var (championLatencies, candidateLatencies) = MeasureLatencies(championModel, candidateModel, all, cancellationToken);
            var championOut = Score(championModel, all, championLatencies, cancellationToken);
            var candidateOut = Score(candidateModel, all, candidateLatencies, cancellationToken);
            var brokenOut = Score(candidateModel, broken, candidateLatencies, cancellationToken);

            // The built-in smoke test runs on real windows (every 25th), against the champion.
            var smoke = new List<float[]>();
            for (var w = 0; w < all.Length / values; w += 25)
            {
                smoke.Add(all.AsSpan(w * values, values).ToArray());
            }

            host.SetSmokeWindows(smoke, options.SmokeTestMinAgreement);
            var simulation = new RolloutSimulation(options, host, scratch, scratchRegistry, champion, candidate, championOut, candidateOut, brokenOut, [.. starts], [.. counts], loggerFactory, registry.Audit);
            simulation.PreparationTime = Stopwatch.GetElapsedTime(started);
            return simulation;
        }
        catch
        {
            await host.DisposeAsync().ConfigureAwait(false);
            Directory.Delete(scratch, recursive: true);
            throw;
        }
    }

    /// <summary>Runs one rollout of the candidate under <paramref name="scenario"/>.</summary>
    /// <param name="scenario">The fault, seed, strategy and traffic.</param>
    /// <param name="cancellationToken">Cancels the run.</param>
    /// <returns>The outcome with every decision.</returns>
    public async Task<SimulationResult> RunAsync(SimulationScenario scenario, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(scenario);
        ArgumentOutOfRangeException.ThrowIfLessThan(scenario.Devices, 1);
        ArgumentOutOfRangeException.ThrowIfLessThan(scenario.WindowsPerDeviceInterval, 1);
        var clock = new VirtualClock(new DateTimeOffset(2026, 1, 15, 10, 30, 0, TimeSpan.Zero));
        var runDir = Path.Combine(_scratch, "runs", $"{scenario.Fault}-{scenario.Seed}-{Guid.NewGuid():N}");
        var sink = new DecisionSink(_audit);
        _registry.SetCurrent(Champion);
        var options = CopyOptions(_options, runDir);
        var serving = new SimulatedServing(new SharedHost(_models, this), WindowGeometry.From(_models.GetCard(Champion)), clock.GetUtcNow(), Champion);
        var rng = new Random(scenario.Seed);
        try
        {
            await using var controller = await RolloutController.OpenAsync(_registry, options, serving, sink, DriftClassMixTest.Instance, _loggerFactory, clock, cancellationToken).ConfigureAwait(false);
            var start = clock.GetUtcNow();
            var status = await controller.ExecuteAsync(
                RolloutCommand.Start(Candidate, scenario.Strategy, "simulator", $"simulated rollout, fault {scenario.Fault}, seed {scenario.Seed}") with { RolloutId = string.Create(CultureInfo.InvariantCulture, $"sim-{scenario.Fault}-{scenario.Seed}") },
                cancellationToken).ConfigureAwait(false);

            var devices = new (string Id, int Stream, int Position)[scenario.Devices];
            for (var d = 0; d < devices.Length; d++)
            {
                var stream = rng.Next(_streamStart.Length);
                devices[d] = (string.Create(CultureInfo.InvariantCulture, $"device-{scenario.Seed}-{d}"), stream, rng.Next(_streamWindows[stream]));
            }

            var interval = IntervalOf(status) ?? TimeSpan.FromMinutes(1);
            var intervals = 0;
            while (!status.Phase.IsTerminal() && intervals < scenario.MaxIntervals)
            {
                cancellationToken.ThrowIfCancellationRequested();
                for (var d = 0; d < devices.Length; d++)
                {
                    ref var device = ref devices[d];
                    for (var w = 0; w < scenario.WindowsPerDeviceInterval; w++)
                    {
                        var window = _streamStart[device.Stream] + device.Position;
                        device.Position = (device.Position + 1) % _streamWindows[device.Stream];
                        Serve(serving, device.Id, window, scenario, rng);
                    }
                }

                clock.Advance(IntervalOf(status) ?? interval);
                intervals++;
                status = (await controller.ReconcileAsync(cancellationToken).ConfigureAwait(false))!;
            }

            return new SimulationResult(status, intervals, sink.Decisions, clock.GetUtcNow() - start);
        }
        finally
        {
            if (Directory.Exists(runDir))
            {
                Directory.Delete(runDir, recursive: true);
            }
        }
    }

    /// <inheritdoc />
    public async ValueTask DisposeAsync()
    {
        await _models.DisposeAsync().ConfigureAwait(false);
        try
        {
            Directory.Delete(_scratch, recursive: true);
        }
        catch (IOException)
        {
        }
    }

    private static TimeSpan? IntervalOf(RolloutStatus status) => status.CurrentStep is { Kind: RolloutStepKind.Analyze } step ? step.Interval : null;

    private static RolloutControllerOptions CopyOptions(RolloutControllerOptions source, string stateDirectory)
    {
        var o = new RolloutControllerOptions
        {
            StateDirectory = stateDirectory,
            FailureThreshold = source.FailureThreshold,
            UnmeasurableLimit = source.UnmeasurableLimit,
            MaxInconclusiveIntervals = source.MaxInconclusiveIntervals,
            SmokeTestMinAgreement = source.SmokeTestMinAgreement,
            MetricsRegistry = source.MetricsRegistry ?? Prometheus.Metrics.NewCustomRegistry(),
        };
        var a = source.Analysis;
        var b = o.Analysis;
        (b.ConfidenceLevel, b.MaxErrorRate, b.MinRequests, b.LatencyP95Budget, b.LatencyP99Budget, b.MaxLatencyRatio, b.MaxLatencyInflation, b.MinLatencySamples) =
            (a.ConfidenceLevel, a.MaxErrorRate, a.MinRequests, a.LatencyP95Budget, a.LatencyP99Budget, a.MaxLatencyRatio, a.MaxLatencyInflation, a.MinLatencySamples);
        (b.MaxConfidenceDrop, b.MaxUncertainRateIncrease, b.MinPredictions, b.MaxClassMixDistance, b.ClassMixAlpha, b.MinAgreementRate) =
            (a.MaxConfidenceDrop, a.MaxUncertainRateIncrease, a.MinPredictions, a.MaxClassMixDistance, a.ClassMixAlpha, a.MinAgreementRate);
        foreach (var g in a.Gates)
        {
            b.Gates.Add(g);
        }

        foreach (var h in source.Hooks)
        {
            o.Hooks.Add(h);
        }

        foreach (var s in source.Strategies)
        {
            o.Strategies.Add(s);
        }

        o.Canary.Steps.Clear();
        foreach (var w in source.Canary.Steps)
        {
            o.Canary.Steps.Add(w);
        }

        (o.Canary.AnalysisInterval, o.Canary.PassesPerStep, o.Canary.SmokeTest, o.Canary.RequireApprovalBeforePromotion, o.Canary.MirrorToChampion) =
            (source.Canary.AnalysisInterval, source.Canary.PassesPerStep, source.Canary.SmokeTest, source.Canary.RequireApprovalBeforePromotion, source.Canary.MirrorToChampion);
        (o.BlueGreen.AnalysisInterval, o.BlueGreen.RollbackWindowIntervals, o.BlueGreen.RequireApproval, o.BlueGreen.MirrorToChampion) =
            (source.BlueGreen.AnalysisInterval, source.BlueGreen.RollbackWindowIntervals, source.BlueGreen.RequireApproval, source.BlueGreen.MirrorToChampion);
        (o.Shadow.AnalysisInterval, o.Shadow.PassesRequired, o.Shadow.MirrorPercent, o.Shadow.Then) =
            (source.Shadow.AnalysisInterval, source.Shadow.PassesRequired, source.Shadow.MirrorPercent, source.Shadow.Then);
        o.Recreate.SmokeTest = source.Recreate.SmokeTest;
        return o;
    }

    private static Outputs Score(HarModel model, float[] windows, TimeSpan[] latencies, CancellationToken ct)
    {
        var values = model.WindowValues;
        var n = windows.Length / values;
        var k = model.Card.ClassCount;
        var labels = new int[n];
        var confidence = new float[n];
        var uncertain = new bool[n];
        const int Batch = 256;
        var probabilities = new float[Batch * k];
        var predictions = new Prediction[Batch];
        for (var start = 0; start < n; start += Batch)
        {
            ct.ThrowIfCancellationRequested();
            var count = Math.Min(Batch, n - start);
            model.Predict(windows.AsSpan(start * values, count * values), probabilities, predictions.AsSpan(0, count));
            for (var i = 0; i < count; i++)
            {
                labels[start + i] = predictions[i].ClassIndex;
                confidence[start + i] = predictions[i].Confidence;
                uncertain[start + i] = predictions[i].IsUncertain;
            }
        }

        var sorted = (TimeSpan[])latencies.Clone();
        Array.Sort(sorted);
        return new Outputs(labels, confidence, uncertain, latencies, sorted[(int)Math.Ceiling(0.95 * sorted.Length) - 1], sorted[sorted.Length / 2]);
    }

    /// <summary>
    /// Real single-window latencies of both models on the same real windows (wall time of this
    /// machine), sampled by the runs. The two models are timed in alternating order on each window, and
    /// each window is timed <see cref="LatencyRepeats"/> times per model keeping the fastest: a burst of
    /// load from other processes then inflates neither model's figures (one pass per model, one after
    /// the other, once measured a 0.8 ms model at 4.6 ms p95 because the machine was busy during its
    /// pass, and every healthy run then failed the latency gate).
    /// </summary>
    private static (TimeSpan[] Champion, TimeSpan[] Candidate) MeasureLatencies(HarModel champion, HarModel candidate, float[] windows, CancellationToken ct)
    {
        var values = champion.WindowValues;
        var n = windows.Length / values;
        var samples = Math.Min(n, LatencySamples);
        var championLatencies = new TimeSpan[samples];
        var candidateLatencies = new TimeSpan[samples];
        var one = new Prediction[1];
        var championProbabilities = new float[champion.Card.ClassCount];
        var candidateProbabilities = new float[candidate.Card.ClassCount];

        // Warm-up of the single-window path of both sessions.
        for (var i = 0; i < 10; i++)
        {
            champion.Predict(windows.AsSpan(0, values), championProbabilities, one);
            candidate.Predict(windows.AsSpan(0, values), candidateProbabilities, one);
        }

        for (var i = 0; i < samples; i++)
        {
            ct.ThrowIfCancellationRequested();
            var window = windows.AsSpan((int)((i * 7919L) % n) * values, values);
            var championBest = TimeSpan.MaxValue;
            var candidateBest = TimeSpan.MaxValue;
            for (var r = 0; r < LatencyRepeats; r++)
            {
                var championFirst = ((i + r) & 1) == 0;
                if (championFirst)
                {
                    championBest = Min(championBest, Time(champion, window, championProbabilities, one));
                }

                candidateBest = Min(candidateBest, Time(candidate, window, candidateProbabilities, one));
                if (!championFirst)
                {
                    championBest = Min(championBest, Time(champion, window, championProbabilities, one));
                }
            }

            championLatencies[i] = championBest;
            candidateLatencies[i] = candidateBest;
        }

        return (championLatencies, candidateLatencies);

        static TimeSpan Min(TimeSpan a, TimeSpan b) => a < b ? a : b;

        static TimeSpan Time(HarModel model, ReadOnlySpan<float> window, float[] probabilities, Prediction[] one)
        {
            var t0 = Stopwatch.GetTimestamp();
            model.Predict(window, probabilities, one);
            return Stopwatch.GetElapsedTime(t0);
        }
    }

    private double Agreement(Outputs other)
    {
        var same = 0;
        for (var i = 0; i < _champion.Labels.Length; i++)
        {
            same += _champion.Labels[i] == other.Labels[i] ? 1 : 0;
        }

        return (double)same / _champion.Labels.Length;
    }

    private void Serve(SimulatedServing serving, string deviceId, int window, SimulationScenario scenario, Random rng)
    {
        var decision = TrafficRouter.Route(serving.Plan, deviceId);
        var served = Outcome(decision.Version, window, scenario, rng);
        var o = serving.Observations;
        if (served.Error)
        {
            o.RecordError(decision.Version, served.Latency);
        }
        else
        {
            o.RecordPrediction(decision.Version, new PredictionObservation(served.Label, served.Confidence, served.Uncertain, served.Latency));
        }

        if (decision.ShadowVersion is not { } shadowVersion)
        {
            return;
        }

        var shadow = Outcome(shadowVersion, window, scenario, rng);
        if (decision.IsCandidate)
        {
            o.RecordLatency(shadowVersion, shadow.Latency);
        }
        else if (shadow.Error)
        {
            o.RecordError(shadowVersion, shadow.Latency);
        }
        else
        {
            o.RecordPrediction(shadowVersion, new PredictionObservation(shadow.Label, shadow.Confidence, shadow.Uncertain, shadow.Latency));
        }

        if (!served.Error && !shadow.Error)
        {
            var (c, s) = decision.IsCandidate ? (served, shadow) : (shadow, served);
            o.RecordPair(new PairedObservation(c.Label, c.Confidence, c.Uncertain, s.Label, s.Confidence, s.Uncertain));
        }
    }

    private (int Label, float Confidence, bool Uncertain, TimeSpan Latency, bool Error) Outcome(string version, int window, SimulationScenario scenario, Random rng)
    {
        var isCandidate = version == Candidate;
        var table = !isCandidate ? _champion : scenario.Fault == SimulationFault.BrokenNormalization ? _candidateBroken : _candidate;
        var latency = table.Latencies[rng.Next(table.Latencies.Length)];
        if (isCandidate && scenario.Fault == SimulationFault.Latency)
        {
            latency *= scenario.LatencyFactor;
        }

        var error = isCandidate && scenario.Fault == SimulationFault.Errors && rng.NextDouble() < scenario.ErrorRate;
        return (table.Labels[window], table.Confidence[window], table.Uncertain[window], latency, error);
    }

    private sealed record Outputs(int[] Labels, float[] Confidence, bool[] Uncertain, TimeSpan[] Latencies, TimeSpan BaselineP95, TimeSpan BaselineMedian);

    /// <summary>The shared, already-loaded real models; latency baselines are the median of the latencies the runs sample from.</summary>
    private sealed class SharedHost(HarModelHost models, RolloutSimulation simulation) : IModelVersionHost
    {
        public ValueTask LoadAsync(VerifiedModelBytes model, CancellationToken cancellationToken) => models.LoadAsync(model, cancellationToken);

        public bool IsLoaded(string version) => models.IsLoaded(version);

        public ModelCard GetCard(string version) => models.GetCard(version);

        public ValueTask<Prediction> PredictAsync(string version, ReadOnlyMemory<float> window, CancellationToken cancellationToken) => models.PredictAsync(version, window, cancellationToken);

        public SmokeTestOutcome SmokeTest(string version, string? stableVersion) => models.SmokeTest(version, stableVersion);

        public void SetSmokeWindows(IReadOnlyList<float[]> windows, double minAgreement)
        {
            // The simulation's own known windows (set at preparation) stay in force.
        }

        public TimeSpan? GetBaselineLatency(string version) =>
            version == simulation.Champion ? simulation._champion.BaselineMedian : version == simulation.Candidate ? simulation._candidate.BaselineMedian : null;

        public OutputReference? GetOutputReference(string version) => models.GetOutputReference(version);

        public ValueTask UnloadAsync(string version) => ValueTask.CompletedTask;

        public ValueTask DisposeAsync() => ValueTask.CompletedTask;
    }

    /// <summary>
    /// Collects the rollout's audit events as readable decisions and, when the caller's registry has an
    /// audit log, writes each one to it (marked simulated, with its virtual time).
    /// </summary>
    private sealed class DecisionSink(IDeploymentAuditSink? log) : IDeploymentAuditSink
    {
        private readonly List<SimulationDecision> _decisions = [];

        public IReadOnlyList<SimulationDecision> Decisions => _decisions;

        public async ValueTask AppendAsync(DeploymentAuditEvent auditEvent, CancellationToken cancellationToken)
        {
            var d = auditEvent.Details;
            var summary = auditEvent.EventType switch
            {
                "rollout.verdict" => $"analysis {(string?)d["verdict"]} at {(double?)d["candidate_percent"]}%: " + string.Join("; ", (d["gates"] as JsonArray ?? []).Where(g => (string?)g!["verdict"] != "Pass").Select(g => $"{(string?)g!["gate"]} {(string?)g["verdict"]}: {(string?)g["message"]}")),
                "rollout.step" => $"step {(int?)d["step"]}: {(string?)d["description"]}",
                "rollout.transition" => $"{(string?)d["from"] ?? "-"} -> {(string?)d["to"]}: {(string?)d["message"]}",
                "rollout.rollback" => $"ROLLBACK {(string?)d["from"]} -> {(string?)d["to"]} ({(string?)d["trigger"]}): {(string?)d["reason"]}",
                _ => $"{auditEvent.Actor}: {d.ToJsonString()}",
            };
            _decisions.Add(new SimulationDecision(auditEvent.Timestamp, auditEvent.EventType, summary));
            if (log is null)
            {
                return;
            }

            var details = (JsonObject)d.DeepClone();
            details["simulated"] = true;
            details["virtual_time"] = auditEvent.Timestamp;
            if (details["evidence"] is JsonObject evidence)
            {
                // The rollback record carries only the evidence: mark it there too.
                evidence["simulated"] = true;
            }

            await log.AppendAsync(auditEvent with { Details = details, Timestamp = TimeProvider.System.GetUtcNow() }, cancellationToken).ConfigureAwait(false);
        }

        public ValueTask AppendRecordAsync(AuditRecord record, CancellationToken cancellationToken) =>
            log?.AppendRecordAsync(record, cancellationToken) ?? ValueTask.CompletedTask;

        // A run never resumes after a crash (its state folder is new), so no outbox entry is ever already in
        // the log; asking the log would also match an earlier run with the same rollout id and drop events.
        public ValueTask<long> GetLastSequenceAsync(string rolloutId, CancellationToken cancellationToken) => ValueTask.FromResult(-1L);
    }
}

/// <summary>
/// The simulation's stand-in for the <see cref="ServingPipeline"/>: the controller publishes plans to it
/// and reads its observations exactly as it does with the real pipeline, while the runs feed the
/// observations with the models' precomputed predictions on a virtual clock.
/// </summary>
internal sealed class SimulatedServing(IModelVersionHost models, WindowGeometry geometry, DateTimeOffset start, string version) : IServingControl
{
    private TrafficPlan _plan = TrafficPlan.Single(version);

    public IModelVersionHost Models => models;

    public RolloutObservations Observations { get; } = new(start);

    public WindowGeometry Geometry => geometry;

    public TrafficPlan Plan => Volatile.Read(ref _plan);

    public void Publish(TrafficPlan plan) => Volatile.Write(ref _plan, plan);
}

/// <summary>A clock that moves only when told to (the simulation's virtual time).</summary>
internal sealed class VirtualClock(DateTimeOffset start) : TimeProvider
{
    private long _ticks = start.UtcTicks;

    public override DateTimeOffset GetUtcNow() => new(Interlocked.Read(ref _ticks), TimeSpan.Zero);

    public override long GetTimestamp() => Interlocked.Read(ref _ticks);

    public override long TimestampFrequency => TimeSpan.TicksPerSecond;

    public void Advance(TimeSpan by) => Interlocked.Add(ref _ticks, by.Ticks);
}
