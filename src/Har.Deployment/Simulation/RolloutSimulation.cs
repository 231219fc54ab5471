using System.Diagnostics;
using System.Globalization;
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
internal sealed partial class RolloutSimulation : IAsyncDisposable
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
    private readonly System.Collections.Concurrent.ConcurrentDictionary<(string Version, string? Stable, bool KnownWindows), SmokeTestOutcome> _smokeOutcomes = new();
    private int[] _windowTruth = [];
    private (int Length, int Stride) _geometry;

    /// <summary>The frames before each window the simulated pipeline keeps: the longer of the two models' contexts.</summary>
    private int _contextFrames;
    private int _classes = 1;

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

    /// <summary>Gets each model's share of uncertain predictions and mean confidence over every window (champion, healthy candidate).</summary>
    public (double ChampionUncertain, double CandidateUncertain, double ChampionConfidence, double CandidateConfidence) Calibration =>
        (_champion.Uncertain.Average(u => u ? 1.0 : 0.0), _candidate.Uncertain.Average(u => u ? 1.0 : 0.0), _champion.Confidence.Average(c => (double)c), _candidate.Confidence.Average(c => (double)c));

    /// <summary>Gets the champion's measured p95 single-window latency.</summary>
    public TimeSpan ChampionLatencyP95 => _champion.BaselineP95;

    /// <summary>Gets the candidate's measured p95 single-window latency.</summary>
    public TimeSpan CandidateLatencyP95 => _candidate.BaselineP95;

    /// <summary>
    /// Gets or sets whether each run keeps its rollout state in a <c>rollout.json</c> file written durably (temp file,
    /// fsync, rename), as a real controller does, instead of in memory, and runs the smoke test's models again instead
    /// of reusing the first run's outcome. The decisions are the same (a test compares them); the file and the
    /// re-scoring only cost time, as a simulated run is never resumed and the models are deterministic.
    /// </summary>
    /// <value>The default value is <see langword="false"/>.</value>
    internal bool DurableState { get; set; }

    /// <summary>Gets where the runs' wall time went (a Stopwatch breakdown, summed over every run so far).</summary>
    public SimulationProfile Profile { get; } = new();

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
            if (candidateModel.Card.WindowLength != card.WindowLength || candidateModel.Card.Stride != card.Stride || candidateModel.Card.ChannelCount != card.ChannelCount)
            {
                throw new InvalidOperationException($"Champion {card} and candidate {candidateModel.Card} disagree on window length, stride or channels; a rollout between them cannot compare predictions.");
            }

            if (ClassOrder.Difference(card.Labels, candidateModel.Card.Labels) is { } difference)
            {
                throw new InvalidOperationException($"Candidate {candidateModel.Card} predicts other activities than champion {card} ({difference}); a rollout's analysis compares the two versions' predictions activity by activity, so it cannot judge them.");
            }

            // Window every stream as the serving pipeline does (StreamWindower), keeping the longer of the two models'
            // contexts before each window (ServingOptions.ContextFrames): each model reads its last frames.
            var context = Math.Max(card.ContextFrames, candidateModel.Card.ContextFrames);
            var values = (context + card.WindowLength) * card.ChannelCount;
            var windows = new List<float>();
            var starts = new List<int>();
            var counts = new List<int>();
            var truth = new List<int>();
            using var windower = new StreamWindower(card, new StreamWindowerOptions { MaxStreams = 1, MaxWindowsPerAppend = int.MaxValue, ContextFrames = context });
            foreach (var stream in streams)
            {
                var frames = stream.Frames.Span;
                if (frames.Length % card.ChannelCount != 0)
                {
                    throw new ArgumentException($"Stream '{stream.Id}' holds {frames.Length} values, not a whole number of {card.ChannelCount}-channel frames.", nameof(streams));
                }

                var cut = windower.Append(stream.Id, frames);
                if (cut.Count > 0)
                {
                    starts.Add(windows.Count / values);
                    counts.Add(cut.Count);
                    var frameLabels = stream.FrameLabels.Span;
                    for (var w = 0; w < cut.Count; w++)
                    {
                        windows.AddRange(cut[w]);
                        truth.Add(WindowTruth(frameLabels, (int)cut.GetStartFrame(w), card.WindowLength));
                    }
                }

                windower.Remove(stream.Id);
            }

            if (counts.Count == 0)
            {
                throw new ArgumentException($"No stream is long enough for one window of {card.WindowLength} frames.", nameof(streams));
            }

            var all = windows.ToArray();
            var championWindows = championModel.WindowValues == values ? all : WindowGeometry.LastOfEach(all, values, championModel.WindowValues);
            var candidateWindows = candidateModel.WindowValues == values ? all : WindowGeometry.LastOfEach(all, values, candidateModel.WindowValues);
            var broken = new float[candidateWindows.Length];
            var mean = candidateModel.Card.NormalizationMean;
            var std = candidateModel.Card.NormalizationStd;
            for (var i = 0; i < broken.Length; i++)
            {
                // (x' − mean) / std = x: the network sees raw sensor units, as if normalization were skipped.
                var c = i % card.ChannelCount;
                broken[i] = (candidateWindows[i] * std[c]) + mean[c];
            }

            var (championLatencies, candidateLatencies) = MeasureLatencies(championModel, candidateModel, all, values, cancellationToken);
            // The candidate's classes are counted in the champion's order, by activity name, as the pipeline counts them.
            var championOut = Score(championModel, championWindows, championLatencies, cancellationToken);
            var candidateOut = Score(candidateModel, candidateWindows, candidateLatencies, cancellationToken, championModel.Card.Labels);
            var brokenOut = Score(candidateModel, broken, candidateLatencies, cancellationToken, championModel.Card.Labels);

            // The built-in smoke test runs on known windows against the champion (see SmokeWindows).
            var smoke = SmokeWindows(all, values, truth);

            host.SetSmokeWindows(smoke, options.SmokeTestMinAgreement);
            var simulation = new RolloutSimulation(options, host, scratch, scratchRegistry, champion, candidate, championOut, candidateOut, brokenOut, [.. starts], [.. counts], loggerFactory, registry.Audit);
            simulation._windowTruth = [.. truth];
            simulation._geometry = (card.WindowLength, card.Stride);
            simulation._contextFrames = context;
            simulation._classes = card.ClassCount;
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
        ArgumentOutOfRangeException.ThrowIfLessThan(scenario.InFlight, 1);
        if (scenario.WindowsPerSecond is { } rate && !(rate > 0))
        {
            throw new ArgumentOutOfRangeException(nameof(scenario), rate, "SimulationScenario.WindowsPerSecond must be positive when set.");
        }

        var clock = new VirtualClock(new DateTimeOffset(2026, 1, 15, 10, 30, 0, TimeSpan.Zero));
        var runDir = Path.Combine(_scratch, "runs", $"{scenario.Fault}-{scenario.Seed}-{Guid.NewGuid():N}");
        var sink = new DecisionSink(_audit);
        if (DurableState || _registry.CurrentVersion != Champion)
        {
            // Only after a promoted run: SetCurrent fsyncs the pointer file and its directory.
            _registry.SetCurrent(Champion);
        }

        var options = CopyOptions(_options, runDir);
        scenario.Configure?.Invoke(options);
        if (!DurableState)
        {
            options.StateStore = new InMemoryRolloutStateStore();
        }

        var serving = new SimulatedServing(new SharedHost(_models, this, scenario.SmokeTestWindows), WindowGeometry.From(_models.GetCard(Champion), _contextFrames), clock.GetUtcNow(), Champion);
        var rng = new Random(scenario.Seed);
        var feedback = scenario.Feedback?.Invoke(new SimulationFeedbackContext(serving, _windowTruth, _geometry.Length, _geometry.Stride, scenario.Seed));
        try
        {
            var t0 = Stopwatch.GetTimestamp();
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

            Profile.Open += Stopwatch.GetElapsedTime(t0);
            var interval = IntervalOf(status) ?? TimeSpan.FromMinutes(1);
            var intervals = 0;
            int? visible = null;
            var traffic = new Traffic(scenario, rng, feedback, clock);
            while (!status.Phase.IsTerminal() && intervals < scenario.MaxIntervals)
            {
                cancellationToken.ThrowIfCancellationRequested();
                var length = IntervalOf(status) ?? interval;

                // CPU contention with many requests in flight slows both versions alike during an interval.
                traffic.Contention = scenario.InFlight > 1 ? 1 + (rng.NextDouble() * 0.5 * Math.Min(1, (scenario.InFlight - 1) / 8.0)) : 1;
                traffic.CandidateServed = false;
                var t1 = Stopwatch.GetTimestamp();
                if (scenario.WindowsPerSecond is { } perSecond)
                {
                    var total = (long)Math.Round(perSecond * length.TotalSeconds);
                    for (var i = 0; i < total; i++)
                    {
                        ServeNext(serving, ref devices[rng.Next(devices.Length)], traffic);
                    }
                }
                else
                {
                    for (var d = 0; d < devices.Length; d++)
                    {
                        for (var w = 0; w < scenario.WindowsPerDeviceInterval; w++)
                        {
                            ServeNext(serving, ref devices[d], traffic);
                        }
                    }
                }

                var t2 = Stopwatch.GetTimestamp();
                Profile.Traffic += Stopwatch.GetElapsedTime(t1, t2);
                clock.Advance(length);
                intervals++;
                if (traffic.CandidateServed && visible is null)
                {
                    // A less accurate model answers like a healthy one: its fault shows only when the labels of the
                    // windows it served arrive, the feedback's delay later (never, without feedback).
                    visible = scenario.Fault != SimulationFault.LessAccurate ? intervals
                        : feedback is null ? null
                        : intervals + (int)Math.Ceiling(feedback.Delay / length);
                }

                _ = feedback?.Deliver(clock.GetUtcNow());
                var t3 = Stopwatch.GetTimestamp();
                Profile.Feedback += Stopwatch.GetElapsedTime(t2, t3);
                status = (await controller.ReconcileAsync(cancellationToken).ConfigureAwait(false))!;
                Profile.Reconcile += Stopwatch.GetElapsedTime(t3);
                Profile.Intervals++;
            }

            Profile.Runs++;

            return new SimulationResult(status, intervals, sink.Decisions, clock.GetUtcNow() - start, visible, sink.Course);
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
        (b.MaxAccuracyDrop, b.MinLabelledWindows, b.AccuracyWaitIntervals, b.MaxErrorRateIncrease) = (a.MaxAccuracyDrop, a.MinLabelledWindows, a.AccuracyWaitIntervals, a.MaxErrorRateIncrease);
        o.RollbackOnInconclusive = source.RollbackOnInconclusive;
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

        source.BuiltInStrategies.CopyTo(o.BuiltInStrategies);
        return o;
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

    private void ServeNext(SimulatedServing serving, ref (string Id, int Stream, int Position) device, Traffic traffic)
    {
        var window = _streamStart[device.Stream] + device.Position;
        device.Position = (device.Position + 1) % _streamWindows[device.Stream];
        Serve(serving, device.Id, window, traffic);
    }

    private void Serve(SimulatedServing serving, string deviceId, int window, Traffic traffic)
    {
        var decision = TrafficRouter.Route(serving.Plan, deviceId);
        var served = Outcome(decision.Version, window, traffic);
        var o = serving.Observations;
        var now = traffic.Clock.GetUtcNow();
        traffic.CandidateServed |= decision.Version == Candidate || decision.ShadowVersion == Candidate;
        if (served.Error)
        {
            o.RecordError(decision.Version, served.Wait);
        }
        else
        {
            o.RecordPrediction(decision.Version, new PredictionObservation(served.Label, served.Confidence, served.Uncertain, served.Wait, served.Service));
            traffic.Feedback?.OnServed(deviceId, window, decision.Version, PredictionRole.Served, served.Label, now);
        }

        if (decision.ShadowVersion is not { } shadowVersion || (decision.IsCandidate && served.Error))
        {
            return; // as in the serving pipeline, a window the candidate failed is not mirrored
        }

        var shadow = Outcome(shadowVersion, window, traffic);
        if (decision.IsCandidate && shadow.Error)
        {
            o.RecordMirrorError(shadowVersion, shadow.Wait);
        }
        else if (decision.IsCandidate)
        {
            o.RecordLatency(shadowVersion, shadow.Wait, shadow.Service);
        }
        else if (shadow.Error)
        {
            o.RecordError(shadowVersion, shadow.Wait);
        }
        else
        {
            o.RecordPrediction(shadowVersion, new PredictionObservation(shadow.Label, shadow.Confidence, shadow.Uncertain, shadow.Wait, shadow.Service));
        }

        if (!shadow.Error)
        {
            traffic.Feedback?.OnServed(deviceId, window, shadowVersion, decision.IsCandidate ? PredictionRole.Mirror : PredictionRole.Shadow, shadow.Label, now);
        }

        if (!served.Error && !shadow.Error)
        {
            var (c, s) = decision.IsCandidate ? (served, shadow) : (shadow, served);
            o.RecordPair(new PairedObservation(c.Label, c.Confidence, c.Uncertain, s.Label, s.Confidence, s.Uncertain));
        }
    }

    /// <summary>
    /// One version's outcome on one window: its own service time (a measured single-window time of that
    /// model, slowed by the interval's contention and by an injected slowdown) and the caller's wait, which
    /// adds queueing behind the other requests in flight — the same queue for both versions.
    /// </summary>
    private (int Label, float Confidence, bool Uncertain, TimeSpan Service, TimeSpan Wait, bool Error) Outcome(string version, int window, Traffic traffic)
    {
        var scenario = traffic.Scenario;
        var rng = traffic.Random;
        var isCandidate = version == Candidate;
        var table = !isCandidate ? _champion : scenario.Fault == SimulationFault.BrokenNormalization ? _candidateBroken : _candidate;
        var service = table.Latencies[rng.Next(table.Latencies.Length)] * traffic.Contention;
        if (isCandidate && scenario.Fault == SimulationFault.Latency)
        {
            service *= scenario.LatencyFactor;
        }

        const double Cores = 2;
        var queue = scenario.InFlight > 1 ? _champion.BaselineMedian * ((scenario.InFlight - 1) * (0.5 + rng.NextDouble()) / Cores) * traffic.Contention : TimeSpan.Zero;
        var error = isCandidate && scenario.Fault == SimulationFault.Errors && rng.NextDouble() < scenario.ErrorRate;
        // The less accurate model answers as the champion does, except on its lost windows: less accurate than the
        // champion by the same margin on any set of devices (built on the healthy candidate, which is more accurate than
        // the champion on some people and not on others, it was as accurate as the champion on a few devices' windows).
        var answers = isCandidate && scenario.Fault == SimulationFault.LessAccurate ? _champion : table;
        var label = answers.Labels[window];
        if (isCandidate && scenario.Fault == SimulationFault.PermutedLabels)
        {
            label = (label + 1) % _classes;
        }
        else if (isCandidate && scenario.Fault == SimulationFault.LessAccurate && LosesWindow(window, label, scenario.AccuracyDrop))
        {
            label = (label + 1) % _classes;
        }

        return (label, answers.Confidence[window], answers.Uncertain[window], service, service + queue, error);
    }

    private static int WindowTruth(ReadOnlySpan<int> frameLabels, int start, int length)
    {
        if (frameLabels.Length < start + length)
        {
            return -1;
        }

        var label = frameLabels[start];
        foreach (var l in frameLabels.Slice(start, length))
        {
            if (l != label)
            {
                return -1;
            }
        }

        return label < 0 ? -1 : label;
    }

    /// <summary>The per-run traffic state shared by every window of a run.</summary>
    private sealed class Traffic(SimulationScenario scenario, Random random, ISimulationFeedback? feedback, TimeProvider clock)
    {
        public SimulationScenario Scenario => scenario;

        public Random Random => random;

        public ISimulationFeedback? Feedback => feedback;

        public TimeProvider Clock => clock;

        public double Contention { get; set; } = 1;

        public bool CandidateServed { get; set; }
    }

    private sealed record Outputs(int[] Labels, float[] Confidence, bool[] Uncertain, TimeSpan[] Latencies, TimeSpan BaselineP95, TimeSpan BaselineMedian);

    /// <summary>The shared, already-loaded real models; latency baselines are the median of the latencies the runs sample from.</summary>
    private sealed class SharedHost(HarModelHost models, RolloutSimulation simulation, bool knownWindows) : IModelVersionHost
    {
        public ValueTask LoadAsync(VerifiedModelBytes model, CancellationToken cancellationToken) => models.LoadAsync(model, cancellationToken);

        public bool IsLoaded(string version) => models.IsLoaded(version);

        public ModelCard GetCard(string version) => models.GetCard(version);

        public ValueTask<Prediction> PredictAsync(string version, ReadOnlyMemory<float> window, CancellationToken cancellationToken) => models.PredictAsync(version, window, cancellationToken);

        // The smoke test runs the real models on fixed windows: the same outcome in every run (ONNX Runtime on the CPU
        // is deterministic), so each run after the first reuses it instead of scoring the windows again.
        public SmokeTestOutcome SmokeTest(string version, string? stableVersion) => simulation.DurableState
            ? RunSmokeTest(version, stableVersion)
            : simulation._smokeOutcomes.GetOrAdd((version, stableVersion, knownWindows), key => RunSmokeTest(key.Version, key.Stable));

        private SmokeTestOutcome RunSmokeTest(string version, string? stableVersion) => knownWindows
            ? models.SmokeTest(version, stableVersion)
            : HarModelHost.RunSmokeTest(models.GetModel(version), stableVersion is not null && models.IsLoaded(stableVersion) ? models.GetModel(stableVersion) : null, [], 0);

        public void SetSmokeWindows(IReadOnlyList<float[]> windows, double minAgreement)
        {
            // The simulation's own known windows (set at preparation) stay in force.
        }

        public TimeSpan? GetBaselineLatency(string version) =>
            version == simulation.Champion ? simulation._champion.BaselineMedian : version == simulation.Candidate ? simulation._candidate.BaselineMedian : null;

        public OutputReference? GetOutputReference(string version, string inOrderOf) => knownWindows ? models.GetOutputReference(version, inOrderOf) : null;

        public ValueTask UnloadAsync(string version) => ValueTask.CompletedTask;

        public ValueTask DisposeAsync() => ValueTask.CompletedTask;
    }
}
