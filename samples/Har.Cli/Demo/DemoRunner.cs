using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using Har.Audit;
using Har.Inference.Data;
using Har.Deployment;
using Har.Drift;
using Har.Inference;
using Spectre.Console;

namespace Har.Cli.Demo;

/// <summary>What the demo runs on.</summary>
internal sealed class DemoOptions
{
    /// <summary>The UCI HAPT folder, or <see langword="null"/> for the synthetic generator.</summary>
    public string? HaptFolder { get; init; }

    /// <summary>Where the registry, audit log and signing key are kept.</summary>
    public required string OutputDirectory { get; init; }

    /// <summary>The folder holding the champion and candidate .onnx files.</summary>
    public required string ChampionPath { get; init; }

    public required string CandidatePath { get; init; }

    /// <summary>Seeds the synthetic data, the simulated devices and the injected faults.</summary>
    public int Seed { get; init; } = 1;

    /// <summary>How many test sessions are streamed.</summary>
    public int Sessions { get; init; } = 4;

    /// <summary>The fault injected into the second canary.</summary>
    public SimulationFault Fault { get; init; } = SimulationFault.Errors;

    /// <summary>The rollout controller's options (analysis thresholds, strategy steps); <see langword="null"/> for the package defaults.</summary>
    public RolloutControllerOptions? Rollout { get; init; }

    /// <summary>Gets the share of windows whose true activity is reported back as feedback (users confirming what they did), a minute late; 0 turns feedback off.</summary>
    public double FeedbackShare { get; init; } = 0.25;
}

/// <summary>
/// <c>har demo</c>: composes the four packages on the bundled models — registry and audit log, streaming inference
/// with activity segments, a drift report (and a stuck sensor caught), a healthy canary that promotes and a faulty
/// one that is rolled back (Har.Deployment's rollout simulation: the real controller, router and analysis on a
/// virtual clock, fed with the models' real predictions), then verifies the audit log. No domain logic lives here.
/// </summary>
internal sealed class DemoRunner(IAnsiConsole console, DemoOptions options)
{
    private static readonly CultureInfo Inv = CultureInfo.InvariantCulture;
    private static readonly string[] Channels = ["ax", "ay", "az", "gx", "gy", "gz"];
    private const string Actor = "har-demo";
    private const string Origin = "demo.har.local/audit";

    private readonly DemoSummary _summary = new();
    private readonly List<Stream> _streams = [];
    private readonly List<Stream> _reference = [];
    private StatusContext? _status;

    public async Task<DemoSummary> RunAsync(CancellationToken cancellationToken)
    {
        var started = Stopwatch.GetTimestamp();
        Directory.CreateDirectory(options.OutputDirectory);
        _summary.OutputDirectory = Path.GetFullPath(options.OutputDirectory);
        console.Write(new Rule("[bold]har demo[/]: inference, drift, rollout and audit on the bundled models").LeftJustified());

        // The checkpoint signing key lives beside the log, never inside it; auditors get the verifier key.
        var keyPath = Path.Combine(options.OutputDirectory, "audit-signing.key");
        using var key = AuditSigningKey.Generate(Origin);
        key.Save(keyPath);
        var auditDir = Path.Combine(options.OutputDirectory, "audit");
        var log = AuditLog.Open(new AuditLogOptions { Directory = auditDir, Origin = Origin, SigningKeyPath = keyPath, EnableMetrics = false });
        try
        {
            await Step("data", "Loading sensor data", () => LoadData(cancellationToken)).ConfigureAwait(false);
            var registry = await Step("models", "Registering the bundled models", () => Task.FromResult(RegisterModels(log))).ConfigureAwait(false);
            await Step("predict", "Streaming sessions through the serving pipeline", () => PredictAsync(registry, cancellationToken)).ConfigureAwait(false);
            await Step("drift", "Scoring drift against the reference profile", () => Task.Run(() => DriftAsync(log, cancellationToken), cancellationToken)).ConfigureAwait(false);
            await Step("rollout", "Canary rollouts on a virtual clock", () => RolloutsAsync(registry, log, cancellationToken)).ConfigureAwait(false);
        }
        finally
        {
            await log.DisposeAsync().ConfigureAwait(false);
        }

        await Step("audit", "Verifying the audit log", () => Task.Run(() => VerifyAudit(auditDir, key.VerifierKey), cancellationToken)).ConfigureAwait(false);
        _summary.ElapsedSeconds = Stopwatch.GetElapsedTime(started).TotalSeconds;
        PrintSummary();
        return _summary;
    }

    private async Task<T> Step<T>(string name, string title, Func<Task<T>> run)
    {
        var t0 = Stopwatch.GetTimestamp();
        var result = await console.Status().Spinner(Spinner.Known.Dots).StartAsync($"{title}…", ctx =>
        {
            _status = ctx;
            return run();
        }).ConfigureAwait(false);
        _status = null;
        var seconds = Stopwatch.GetElapsedTime(t0).TotalSeconds;
        _summary.StepSeconds[name] = Math.Round(seconds, 3);
        console.MarkupLine(string.Create(Inv, $"[green]✓[/] {Markup.Escape(title)} [grey]({seconds:0.0} s)[/]"));
        console.WriteLine();
        return result;
    }

    private Task<bool> Step(string name, string title, Func<Task> run) => Step(name, title, async () =>
    {
        await run().ConfigureAwait(false);
        return true;
    });

    // ---- 1. data --------------------------------------------------------------------------------------------

    private Task<bool> LoadData(CancellationToken ct)
    {
        _summary.Data.Seed = options.Seed;
        if (options.HaptFolder is { } folder)
        {
            _summary.Data.Source = "uci-hapt";
            _summary.Data.Folder = folder;
            var names = SensorDataset.LoadLabelNames(folder);
            var all = SensorDataset.Load(folder, split: null, cancellationToken: ct);

            // A few test subjects (one session each) are streamed; every training session forms the drift reference (the
            // alarm's thresholds are calibrated on it: the fewer people, the less of their variety it has seen).
            var test = all.Where(s => s.Split == "test").GroupBy(s => s.Subject).Select(g => g.First()).Take(options.Sessions);
            foreach (var s in test)
            {
                var labels = s.Labels.Select(l => l == 0 || l >= names.Length ? null : names[l]).ToArray();
                _streams.Add(new Stream(string.Create(Inv, $"subject{s.Subject:D2}-session{s.Session:D2}"), s.Subject, s.Samples, labels));
            }

            foreach (var s in all.Where(s => s.Split == "train"))
            {
                _reference.Add(new Stream(string.Create(Inv, $"subject{s.Subject:D2}-session{s.Session:D2}"), s.Subject, s.Samples, []));
            }

            console.MarkupLine(string.Create(Inv, $"[bold]UCI HAPT[/] test subjects from [grey]{Markup.Escape(folder)}[/] (real recordings, waist-worn smartphone, 50 Hz)"));
        }
        else
        {
            _summary.Data.Source = "synthetic";
            foreach (var s in SyntheticImu.Generate(options.Seed, options.Sessions, 240, "synthetic-test", firstSubject: 101))
            {
                _streams.Add(new Stream(s.Id, s.Subject, s.Samples, s.Labels));
            }

            foreach (var s in SyntheticImu.Generate(options.Seed + 7919, 12, 300, "synthetic-train", firstSubject: 1))
            {
                _reference.Add(new Stream(s.Id, s.Subject, s.Samples, []));
            }

            console.Write(new Panel(new Markup(
                "[bold yellow]SYNTHETIC DATA[/] — no UCI HAPT folder was found (../shared/data/uci-hapt, $HAR_SHARED or --data).\n" +
                "The streams below come from a seeded generator of plausible waist-worn IMU signals (per-activity statistics\n" +
                "and the mean stride cycle of the HAPT training subjects, sensor noise). Predictions on them show the pipeline\n" +
                "working, not the models' accuracy."))
                .Header("[yellow] synthetic [/]").BorderColor(Color.Yellow));
        }

        _summary.Data.Sessions.AddRange(_streams.Select(s => s.Id));
        _summary.Data.Frames = _streams.Sum(s => (long)s.Length);
        _summary.Data.ReferenceSessions = _reference.Count;
        var table = new Table().Border(TableBorder.Rounded).AddColumns("stream", "subject", "duration", "labelled");
        foreach (var s in _streams)
        {
            var labelled = s.Labels.Count(l => l is not null);
            table.AddRow(Markup.Escape(s.Id), s.Subject.ToString(Inv), string.Create(Inv, $"{s.Length / 50.0 / 60:0.0} min"), string.Create(Inv, $"{100.0 * labelled / Math.Max(1, s.Length):0}%"));
        }

        console.Write(table);
        return Task.FromResult(true);
    }

    // ---- 2. models --------------------------------------------------------------------------------------------

    private ModelRegistry RegisterModels(AuditLog log)
    {
        var registry = new ModelRegistry(Path.Combine(options.OutputDirectory, "registry"), log);
        var table = new Table().Border(TableBorder.Rounded).AddColumns("role", "model", "parameters", "window", "card accuracy", "sha256", "deployment record");
        foreach (var (path, role) in new[] { (options.ChampionPath, "champion"), (options.CandidatePath, "candidate") })
        {
            var card = ModelCard.Load(path);
            var existing = registry.List().FirstOrDefault(m => m.Version == card.ModelVersion);
            var registered = existing ?? registry.Register(path, new ModelRegistrationOptions
            {
                Deployer = Actor,
                Method = "har demo",
                EnvironmentTarget = "demo",
                ApprovedBy = role == "champion" ? "demo operator" : null,
                PassedSmokeTest = role == "champion",
            });
            _summary.Models.Add(new DemoModel
            {
                Version = registered.Version,
                Name = registered.ModelName,
                Role = role,
                Parameters = registered.Parameters,
                Sha256 = registered.Sha256,
                DeploymentId = registered.DeploymentId,
                CardAccuracy = card.Metrics.Accuracy,
            });
            table.AddRow(
                role,
                Markup.Escape($"{registered.ModelName} {registered.Version}"),
                registered.Parameters.ToString("N0", Inv),
                string.Create(Inv, $"{card.WindowLength} × {card.ChannelCount} @ {card.SampleRateHz} Hz, stride {card.Stride}"),
                card.Metrics.Accuracy.ToString("0.000", Inv),
                registered.Sha256[..16] + "…",
                Markup.Escape(Path.GetFileName(registered.DeploymentRecordPath)));
        }

        if (registry.CurrentVersion != _summary.Models[0].Version)
        {
            registry.SetCurrent(_summary.Models[0].Version);
        }

        console.Write(table);
        console.MarkupLine($"registry [grey]{Markup.Escape(registry.Root)}[/], current version [bold]{Markup.Escape(registry.CurrentVersion ?? "-")}[/]");
        return registry;
    }

    // ---- 3. predictions -----------------------------------------------------------------------------------------

    private async Task<bool> PredictAsync(ModelRegistry registry, CancellationToken ct)
    {
        // The same serving pipeline the HTTP service runs: windowing, routing, micro-batching, observers.
        var serving = new ServingOptions { MetricsRegistry = Prometheus.Metrics.NewCustomRegistry(), MaxStreams = Math.Max(1, _streams.Count) };
        serving.Model.EnableMetrics = false;
        await using var pipeline = ServingPipeline.Open(registry, serving);
        var champion = registry.Get(registry.CurrentVersion!);
        var card = ModelCard.Load(champion.ModelPath);
        _summary.Predictions.Model = card.ToString();
        var smoother = new ActivitySmoother(card);
        var labelIndex = card.Labels.Select((l, i) => (l, i)).ToDictionary(x => x.l, x => x.i, StringComparer.Ordinal);
        var recordings = new List<LabeledRecording>();
        var perStream = new Table().Border(TableBorder.Rounded).AddColumns("stream", "windows", "segments", "uncertain", "most frequent");
        IReadOnlyList<ActivitySegment>? firstSegments = null;
        Stream? first = null;
        // The devices upload concurrently, ten seconds of frames at a time (as phones batch their sensor uploads);
        // each upload's completed windows are predicted in one batch.
        var predictions = _streams.Select(_ => new List<Prediction>()).ToArray();
        var starts = _streams.Select(_ => new List<long>()).ToArray();
        var longest = _streams.Max(s => s.Length);
        const int Upload = 10 * 50;
        var streaming = Stopwatch.GetTimestamp();
        for (var offset = 0; offset < longest; offset += Upload)
        {
            _status?.Status(string.Create(Inv, $"Streaming {_streams.Count} sessions through {Markup.Escape(card.ToString())}… {offset / 50 / 60:0}:{offset / 50 % 60:00} of {longest / 50 / 60:0}:{longest / 50 % 60:00}"));
            for (var k = 0; k < _streams.Count; k++)
            {
                var s = _streams[k];
                if (offset >= s.Length)
                {
                    continue;
                }

                var count = Math.Min(Upload, s.Length - offset);
                var windows = await pipeline.AppendAsync(s.Id, s.Samples.AsMemory(offset * 6, count * 6), ct).ConfigureAwait(false);
                if (windows.Length == 0)
                {
                    continue;
                }

                foreach (var w in windows)
                {
                    predictions[k].Add(w.Prediction);
                    starts[k].Add(w.StartFrame);
                }

                _summary.Predictions.Batches++;
            }
        }

        for (var k = 0; k < _streams.Count; k++)
        {
            var s = _streams[k];
            pipeline.RemoveStream(s.Id);
            var segments = smoother.Segment(predictions[k].ToArray(), starts[k].ToArray());
            firstSegments ??= segments;
            first ??= s;
            _summary.Predictions.Windows += predictions[k].Count;
            _summary.Predictions.Segments += segments.Count;
            var uncertain = predictions[k].Count(p => p.IsUncertain);
            _summary.Predictions.Uncertain += uncertain;
            foreach (var p in predictions[k])
            {
                _summary.Predictions.ClassCounts[p.Label] = _summary.Predictions.ClassCounts.GetValueOrDefault(p.Label) + 1;
            }

            var top = predictions[k].GroupBy(p => p.Label).OrderByDescending(g => g.Count()).FirstOrDefault();
            perStream.AddRow(Markup.Escape(s.Id), predictions[k].Count.ToString(Inv), segments.Count.ToString(Inv), uncertain.ToString(Inv), top is null ? "-" : Markup.Escape($"{top.Key} ({top.Count()})"));

            var labels = s.Labels.Select(l => l is not null && labelIndex.TryGetValue(l, out var i) ? i : -1).ToArray();
            recordings.Add(new LabeledRecording(s.Samples, labels));
        }

        var elapsed = Stopwatch.GetElapsedTime(streaming).TotalSeconds;
        _summary.Predictions.WindowsPerSecond = Math.Round(_summary.Predictions.Windows / Math.Max(elapsed, 1e-6), 1);
        console.Write(perStream);
        console.MarkupLine(string.Create(Inv, $"{_summary.Predictions.Windows} windows in {_summary.Predictions.Batches} batches, {elapsed:0.00} s of wall time ({_summary.Predictions.WindowsPerSecond:0} windows/s, windowing and inference on this machine)"));

        // A few raw predictions of the first stream, from its middle: what each window returns.
        if (predictions.Length > 0 && predictions[0].Count > 0)
        {
            var raw = new Table().Border(TableBorder.Rounded).Title($"[bold]window predictions of {Markup.Escape(_streams[0].Id)}[/] (6 from the middle)")
                .AddColumns("window", "time", "predicted", "confidence", "entropy", "uncertain", "true activity");
            var mid = Math.Max(0, (predictions[0].Count / 2) - 3);
            for (var i = mid; i < Math.Min(predictions[0].Count, mid + 6); i++)
            {
                var p = predictions[0][i];
                var from = starts[0][i];
                var truth = MajorityLabel(_streams[0].Labels, from, from + card.WindowLength);
                raw.AddRow(
                    i.ToString(Inv),
                    string.Create(Inv, $"{from / (double)card.SampleRateHz:0}–{(from + card.WindowLength) / (double)card.SampleRateHz:0} s"),
                    Markup.Escape(p.Label),
                    p.Confidence.ToString("0.000", Inv),
                    p.Entropy.ToString("0.000", Inv),
                    p.IsUncertain ? "[yellow]yes[/]" : "no",
                    truth is null ? "[grey]-[/]" : truth == p.Label ? $"[green]{Markup.Escape(truth)}[/]" : $"[red]{Markup.Escape(truth)}[/]");
            }

            console.Write(raw);
        }

        if (first is not null && firstSegments is not null)
        {
            var table = new Table().Border(TableBorder.Rounded).Title($"[bold]activity segments of {Markup.Escape(first.Id)}[/] (first 12)")
                .AddColumns("from", "to", "predicted", "confidence", "true activity");
            foreach (var seg in firstSegments.Take(12))
            {
                var truth = MajorityLabel(first.Labels, seg.StartFrame, seg.EndFrame);
                var match = truth is null ? "[grey]-[/]" : truth == seg.Label ? $"[green]{Markup.Escape(truth)}[/]" : $"[red]{Markup.Escape(truth)}[/]";
                table.AddRow(string.Create(Inv, $"{seg.Start.TotalSeconds:0}s"), string.Create(Inv, $"{seg.End.TotalSeconds:0}s"), Markup.Escape(seg.Label), seg.MeanConfidence.ToString("0.00", Inv), match);
            }

            console.Write(table);
        }

        // Accuracy with the evaluation protocol of the model card (windows whose majority label is known).
        using var model = HarModel.Load(champion.ModelPath, new HarModelOptions { EnableMetrics = false });
        var report = ModelEvaluator.Evaluate(model, recordings, cancellationToken: ct);
        if (report.Windows > 0)
        {
            _summary.Predictions.Accuracy = report.Accuracy;
            _summary.Predictions.MacroF1 = report.MacroF1;
            _summary.Predictions.ScoredWindows = report.Windows;
            var note = _summary.Data.Synthetic ? " [yellow](on synthetic data: a pipeline check, not the model's accuracy)[/]" : string.Empty;
            console.MarkupLine(string.Create(Inv, $"accuracy vs true labels [bold]{report.Accuracy:P1}[/], macro-F1 {report.MacroF1:0.000} over {report.Windows} labelled windows (card: {card.Metrics.Accuracy:P1}){note}"));
        }

        return true;
    }

    private static string? MajorityLabel(string?[] labels, long start, long end)
    {
        var counts = new Dictionary<string, int>(StringComparer.Ordinal);
        for (var i = (int)Math.Max(0, start); i < Math.Min(labels.Length, end); i++)
        {
            if (labels[i] is { } l)
            {
                counts[l] = counts.GetValueOrDefault(l) + 1;
            }
        }

        return counts.Count == 0 ? null : counts.MaxBy(kv => kv.Value).Key;
    }

    // ---- 4. drift ---------------------------------------------------------------------------------------------

    private async Task DriftAsync(AuditLog log, CancellationToken ct)
    {
        var builder = new ReferenceProfileBuilder(Channels);
        foreach (var r in _reference)
        {
            builder.AddRecording(string.Create(Inv, $"subject-{r.Subject}"), r.Samples);
        }

        var source = _summary.Data.Synthetic
            ? $"SYNTHETIC generator, seed {options.Seed + 7919}: {_reference.Count} simulated people"
            : $"UCI HAPT training subjects: {_reference.Select(r => r.Subject).Distinct().Count()} people, {_reference.Count} sessions";
        var profile = builder.Build(source);
        profile.Save(Path.Combine(options.OutputDirectory, "drift-profile.json"));
        var d = _summary.Drift;
        d.ReferenceHash = profile.Hash;
        d.ReferenceWindows = profile.SegmentCount;
        d.AlarmCalibrated = profile.Alarms is not null;

        // Every streamed session is a device with its own monitor (its window, its history, its sequential alarm),
        // scored every half window on its last window, as a serving pipeline's DeviceDriftMonitor does.
        var table = new Table().Border(TableBorder.Rounded)
            .Title(string.Create(Inv, $"[bold]device drift alarms[/]: each stream a device, scored every {profile.SegmentLength / 2 / 50} s on its last {profile.SegmentLength / 50} s against reference {profile.Hash[..12]}… ({Markup.Escape(source)})"))
            .AddColumns("device", "minutes", "scorings", "alarm", "largest statistic / threshold", "checks without evidence (scorings)");
        foreach (var s in _streams)
        {
            _status?.Status(string.Create(Inv, $"Streaming {Markup.Escape(s.Id)} through its drift monitor…"));
            var run = StreamDevice(profile, s.Samples, onset: null, ct);
            d.Devices.Add(new DemoDriftDevice { Device = s.Id, Minutes = s.Length / 50.0 / 60, Scorings = run.Scorings, AlarmEpisodes = run.Episodes, Causes = run.Causes });
            table.AddRow(
                Markup.Escape(s.Id),
                (s.Length / 50.0 / 60).ToString("0.0", Inv),
                run.Scorings.ToString(Inv),
                run.Episodes == 0 ? "[green]quiet[/]" : $"[red]{run.Episodes} alarm(s): {Markup.Escape(string.Join(", ", run.Causes))}[/]",
                string.Create(Inv, $"{run.MaxStatistic:0.00} / {run.ThresholdAtMax:0.00}"),
                Markup.Escape(string.Join(", ", run.Unchecked.OrderByDescending(kv => kv.Value).ThenBy(kv => kv.Key, StringComparer.Ordinal).Select(kv => $"{kv.Key} {kv.Value}"))));
        }

        console.Write(table);

        // The injected fault: from a third of one stream on, the accelerometer reads 5 % high on every axis (a gain
        // error no single window shows beyond doubt; the sequential alarm adds up its evidence).
        var victim = _streams.MaxBy(s => s.Length)!;
        var onset = victim.Length / 3;
        var faulty = (float[])victim.Samples.Clone();
        for (var f = onset; f < victim.Length; f++)
        {
            for (var k = 0; k < 3; k++)
            {
                faulty[(f * 6) + k] *= 1.05f;
            }
        }

        d.Fault = string.Create(Inv, $"accelerometer gain ×1.05 on ax, ay, az from minute {onset / 50.0 / 60:0.0} of {victim.Id}");
        d.FaultExpectedCause = nameof(DriftCause.Gain);
        _status?.Status($"Streaming {Markup.Escape(victim.Id)} with the injected fault…");
        var faultRun = StreamDevice(profile, faulty, onset, ct);
        d.FaultEpisodesBeforeOnset = faultRun.EpisodesBeforeOnset;
        d.FaultDetectedAfterSeconds = faultRun.DetectedAfterSeconds;
        d.FaultNamedCause = faultRun.FirstCause;
        d.FaultDiagnosis = faultRun.FirstDiagnosis;
        var ft = new Table().Border(TableBorder.Rounded).Title($"[bold]injected fault[/]: {Markup.Escape(d.Fault)}").AddColumns("", "").HideHeaders();
        ft.AddRow("alarms before the onset", faultRun.EpisodesBeforeOnset.ToString(Inv));
        ft.AddRow("raised", faultRun.DetectedAfterSeconds is { } sec ? string.Create(Inv, $"[red]{sec:0} s after the onset[/]") : "[yellow]not within the stream[/]");
        ft.AddRow("named cause", Markup.Escape(faultRun.FirstCause ?? "-") + (faultRun.FirstCause is null ? string.Empty : faultRun.FirstCause == d.FaultExpectedCause ? " [green](right)[/]" : " [yellow](expected Gain)[/]"));
        ft.AddRow("diagnosis", Markup.Escape(faultRun.FirstDiagnosis ?? "-"));
        console.Write(ft);

        await AppendEventAsync(log, "drift.report", "reference_profile", profile.Hash, d.FaultCaught ? AuditSeverity.Warning : AuditSeverity.Info, new
        {
            reference_hash = profile.Hash,
            alarm_calibrated = d.AlarmCalibrated,
            devices = d.Devices,
            healthy_alarm_episodes = d.HealthyAlarmEpisodes,
            injected_fault = d.Fault,
            injected_fault_detected_after_seconds = d.FaultDetectedAfterSeconds,
            injected_fault_named_cause = d.FaultNamedCause,
            injected_fault_diagnosis = d.FaultDiagnosis,
        }, ct).ConfigureAwait(false);
    }

    /// <summary>Streams one recording through its own <see cref="DriftMonitor"/>, scored every half window; what its alarm did.</summary>
    private static DeviceRun StreamDevice(ReferenceProfile profile, float[] samples, int? onset, CancellationToken ct)
    {
        var len = profile.SegmentLength;
        var step = Math.Max(1, len / 2);
        using var monitor = new DriftMonitor(profile, new DriftMonitorOptions { WindowLength = len, MetricsRegistry = Prometheus.Metrics.NewCustomRegistry(), MonitorName = "demo" });
        var run = new DeviceRun();
        var frames = samples.Length / 6;
        var raised = false;
        for (var end = step; end <= frames; end += step)
        {
            ct.ThrowIfCancellationRequested();
            monitor.Append(samples.AsSpan((end - step) * 6, step * 6));
            if (end < len)
            {
                continue;
            }

            var report = monitor.ScoreNow();
            run.Scorings++;
            foreach (var note in report.Unchecked)
            {
                var key = DriftMetrics.CheckName(note);
                run.Unchecked[key] = run.Unchecked.GetValueOrDefault(key) + 1;
            }

            if (report.Alarm is not { } alarm)
            {
                continue;
            }

            // How close the device came to alarming: the scoring whose statistic lay nearest its threshold.
            if (run.ThresholdAtMax == 0 || alarm.Statistic / alarm.Threshold > run.MaxStatistic / run.ThresholdAtMax)
            {
                (run.MaxStatistic, run.ThresholdAtMax) = (alarm.Statistic, alarm.Threshold);
            }

            if (alarm.Raised && !raised)
            {
                run.Episodes++;
                run.Causes.Add(alarm.Cause.ToString());
                if (end <= onset)
                {
                    run.EpisodesBeforeOnset++;
                }
                else if (onset is { } o && run.DetectedAfterSeconds is null)
                {
                    run.DetectedAfterSeconds = (end - o) / 50.0;
                    run.FirstCause = alarm.Cause.ToString();
                    run.FirstDiagnosis = alarm.Diagnosis;
                }
            }

            raised = alarm.Raised;
        }

        return run;
    }

    private sealed class DeviceRun
    {
        public int Scorings { get; set; }

        public int Episodes { get; set; }

        public int EpisodesBeforeOnset { get; set; }

        public List<string> Causes { get; } = [];

        public double MaxStatistic { get; set; }

        public double ThresholdAtMax { get; set; }

        public double? DetectedAfterSeconds { get; set; }

        public string? FirstCause { get; set; }

        public string? FirstDiagnosis { get; set; }

        public Dictionary<string, int> Unchecked { get; } = new(StringComparer.Ordinal);
    }

    // ---- 5. rollouts ---------------------------------------------------------------------------------------------

    private async Task RolloutsAsync(ModelRegistry registry, AuditLog log, CancellationToken ct)
    {
        var candidate = _summary.Models[1].Version;
        // The true activity of each frame (class index of the champion's card, −1 unknown) travels with the stream,
        // so delayed ground-truth feedback can be fed to the rollout (the simulation's feedback seam).
        var classes = ModelCard.Load(registry.Get(registry.CurrentVersion!).ModelPath).Labels;
        var recorded = _streams.Select(s => new RecordedSession(s.Id, s.Samples, s.Labels.Select(l => l is null ? -1 : IndexOf(classes, l)).ToArray())).ToList();
        await using var simulation = await RolloutSimulation.PrepareAsync(registry, candidate, recorded, options.Rollout, cancellationToken: ct).ConfigureAwait(false);
        console.MarkupLine(string.Create(Inv, $"{simulation.Windows} windows scored by both models (agreement {simulation.HealthyAgreement:P1}); real p95 single-window latency {simulation.ChampionLatencyP95.TotalMilliseconds:0.###} ms vs {simulation.CandidateLatencyP95.TotalMilliseconds:0.###} ms"));

        await RunRolloutAsync(simulation, SimulationFault.None, _summary.Canary, log, ct).ConfigureAwait(false);
        if (_summary.Canary.Promoted)
        {
            // The real registry follows the decision: the candidate is now the current version.
            registry.SetCurrent(candidate);
        }

        await RunRolloutAsync(simulation, options.Fault, _summary.FaultyCanary, log, ct).ConfigureAwait(false);
        if (_summary.Canary.Promoted)
        {
            // The faulty replay ran against the original champion; the registry keeps the promoted version.
            console.MarkupLine($"registry current version after the rollouts: [bold]{Markup.Escape(registry.CurrentVersion ?? "-")}[/]");
        }
    }

    private async Task RunRolloutAsync(RolloutSimulation simulation, SimulationFault fault, DemoRollout into, AuditLog log, CancellationToken ct)
    {
        var result = await simulation.RunAsync(new SimulationScenario
        {
            Fault = fault,
            Seed = options.Seed,
            Devices = 200,
            // Late ground truth for a share of the windows: the accuracy gate judges the candidate on them.
            Feedback = options.FeedbackShare > 0 ? SimulatedFeedback.Labels(options.FeedbackShare, TimeSpan.FromMinutes(1)) : null,
        }, ct).ConfigureAwait(false);
        into.Champion = simulation.Champion;
        into.Candidate = simulation.Candidate;
        into.Fault = FaultName(fault);
        into.Phase = result.Status.Phase.ToString();
        into.Promoted = result.Promoted;
        into.RolledBack = result.RolledBack;
        into.AnalysisIntervals = result.AnalysisIntervals;
        into.VirtualMinutes = result.Elapsed.TotalMinutes;
        into.Decisions = result.Decisions.Count;
        into.RollbackReason = result.Decisions.LastOrDefault(d => d.EventType == "rollout.rollback")?.Summary;
        // Why: the status carries the last analysis, every gate with its verdict and evidence.
        foreach (var g in result.Status.LastAnalysis?.Gates.Where(g => g.Verdict == GateVerdict.Fail) ?? [])
        {
            var gate = new DemoGate { Gate = g.Gate, Message = g.Message };
            foreach (var (k, v) in g.Evidence)
            {
                gate.Evidence[k] = v;
            }

            into.FailedGates.Add(gate);
        }

        var title = fault == SimulationFault.None
            ? $"[bold]canary {Markup.Escape(simulation.Champion)} → {Markup.Escape(simulation.Candidate)}[/] (healthy)"
            : $"[bold]canary {Markup.Escape(simulation.Champion)} → {Markup.Escape(simulation.Candidate)} with an injected fault[/]: {Markup.Escape(Describe(fault))}";
        var table = new Table().Border(TableBorder.Rounded).Title(title).AddColumns("virtual time", "event", "decision");
        foreach (var d in result.Decisions.Where(d => d.EventType != "rollout.command"))
        {
            var colour = d.EventType == "rollout.rollback" ? "red" : d.Summary.Contains("Fail", StringComparison.Ordinal) ? "yellow" : "default";
            table.AddRow(d.At.ToString("HH:mm", Inv), Markup.Escape(d.EventType), $"[{colour}]{Markup.Escape(Shorten(d.Summary, 150))}[/]");
        }

        console.Write(table);
        var outcome = result.Promoted ? "[green]PROMOTED[/]" : result.RolledBack ? "[red]ROLLED BACK automatically[/]" : $"[yellow]{result.Status.Phase}[/]";
        console.MarkupLine(string.Create(Inv, $"outcome: {outcome} after {result.AnalysisIntervals} analysis interval{(result.AnalysisIntervals == 1 ? "" : "s")} ({result.Elapsed.TotalMinutes:0} virtual minutes, {result.Decisions.Count} decisions)"));
        if (into.RollbackReason is { } reason)
        {
            console.MarkupLine($"  [red]{Markup.Escape(reason)}[/]");
        }

        foreach (var g in into.FailedGates)
        {
            console.MarkupLine($"  failed gate [red]{Markup.Escape(g.Gate)}[/]: {Markup.Escape(g.Message)}");
            if (g.Evidence.Count > 0)
            {
                console.MarkupLine($"  evidence: [grey]{Markup.Escape(string.Join(", ", g.Evidence.Select(kv => string.Create(Inv, $"{kv.Key}={kv.Value:G4}"))))}[/]");
            }
        }

        // The simulation wrote every decision (and the rollback record) to the registry's audit log itself;
        // the demo adds the outcome summary.
        await AppendEventAsync(log, "rollout.simulated", "rollout", result.Status.RolloutId, into.RolledBack ? AuditSeverity.Warning : AuditSeverity.Notice, into, ct).ConfigureAwait(false);
    }

    private static string FaultName(SimulationFault fault) => fault switch
    {
        SimulationFault.Errors => "errors",
        SimulationFault.Latency => "latency",
        SimulationFault.BrokenNormalization => "broken-normalization",
        _ => "none",
    };

    private static string Describe(SimulationFault fault) => fault switch
    {
        SimulationFault.Errors => "20 % of the candidate's requests fail",
        SimulationFault.Latency => "the candidate is 3× slower",
        SimulationFault.BrokenNormalization => "the candidate skips input normalization",
        _ => "none",
    };

    private static int IndexOf(IReadOnlyList<string> labels, string label)
    {
        for (var i = 0; i < labels.Count; i++)
        {
            if (labels[i] == label)
            {
                return i;
            }
        }

        return -1;
    }

    private static string Shorten(string s, int max) => s.Length <= max ? s : string.Concat(s.AsSpan(0, max - 1), "…");

    // ---- 6. audit ----------------------------------------------------------------------------------------------

    private static async Task AppendEventAsync(AuditLog log, string eventType, string entityType, string entityId, AuditSeverity severity, object details, CancellationToken ct)
    {
        using var doc = JsonSerializer.SerializeToDocument(details, details.GetType());
        await log.AppendAsync(
            new AuditEvent
            {
                EventType = eventType,
                EntityType = entityType,
                EntityId = entityId,
                Severity = severity,
                ActionDetails = doc.RootElement.Clone(),
                Actor = Actor,
                Timestamp = TimeProvider.System.GetUtcNow(),
            },
            ct).ConfigureAwait(false);
    }

    private bool VerifyAudit(string auditDir, string verifierKey)
    {
        using (var log = AuditLog.Open(new AuditLogOptions { Directory = auditDir, SigningKeyPath = Path.Combine(options.OutputDirectory, "audit-signing.key"), EnableMetrics = false }))
        {
            log.CreateCheckpoint();
        }

        var result = AuditLog.Verify(auditDir, AuditVerifierKey.Parse(verifierKey));
        _summary.Audit.Directory = auditDir;
        _summary.Audit.Verified = result.IsValid;
        _summary.Audit.Entries = result.EntriesVerified;
        _summary.Audit.CheckpointSize = result.Checkpoint?.TreeSize ?? 0;
        _summary.Audit.RootHash = Convert.ToHexStringLower(result.RootHash.Span);
        _summary.Audit.VerifierKey = verifierKey;
        _summary.Audit.Message = result.Message;
        var table = new Table().Border(TableBorder.Rounded).AddColumns("audit log", "value");
        table.AddRow("verified", result.IsValid ? "[green]yes[/]" : $"[red]NO[/]: {Markup.Escape(result.Message)}");
        table.AddRow("entries", result.EntriesVerified.ToString(Inv));
        table.AddRow("signed checkpoint", string.Create(Inv, $"size {result.Checkpoint?.TreeSize}, root {_summary.Audit.RootHash[..Math.Min(16, _summary.Audit.RootHash.Length)]}…"));
        table.AddRow("verifier key (pinned)", Markup.Escape(verifierKey));
        console.Write(table);
        if (result.Checkpoint is { } checkpoint)
        {
            console.Write(new Panel(new Text(checkpoint.NoteText.TrimEnd())).Header("checkpoint").BorderColor(Color.Grey));
        }

        return result.IsValid;
    }

    private void PrintSummary()
    {
        var s = _summary;
        var table = new Table().Border(TableBorder.Double).Title("[bold]summary[/]").AddColumns("step", "result", "time");
        string Secs(string step) => string.Create(Inv, $"{s.StepSeconds.GetValueOrDefault(step):0.0} s");
        static string Intervals(int n) => n == 1 ? "1 interval" : string.Create(Inv, $"{n} intervals");
        table.AddRow("data", Markup.Escape(string.Create(Inv, $"{(s.Data.Synthetic ? "SYNTHETIC" : "UCI HAPT")}: {s.Data.Sessions.Count} streams, {s.Data.Frames / 50.0 / 60:0.0} min")), Secs("data"));
        table.AddRow("models", Markup.Escape(string.Join(", ", s.Models.Select(m => $"{m.Version} ({m.Role})"))), Secs("models"));
        table.AddRow("predictions", Markup.Escape(string.Create(Inv, $"{s.Predictions.Windows} windows, {s.Predictions.Segments} segments{(s.Predictions.Accuracy is { } a ? $", accuracy {a:P1}" : string.Empty)}")), Secs("predict"));
        table.AddRow("drift", Markup.Escape(string.Create(Inv, $"{s.Drift.HealthyAlarmEpisodes} alarm(s) on {s.Drift.Devices.Count} healthy devices ({s.Drift.Devices.Sum(x => x.Minutes):0} device-minutes); gain ×1.05: {(s.Drift.FaultDetectedAfterSeconds is { } sec ? $"alarm after {sec:0} s naming {s.Drift.FaultNamedCause}" : "missed")}")), Secs("drift"));
        table.AddRow("canary", s.Canary.Promoted ? $"[green]{Markup.Escape(s.Canary.Candidate)} promoted[/] after {Intervals(s.Canary.AnalysisIntervals)}" : $"[red]{Markup.Escape(s.Canary.Phase)}[/]", Secs("rollout"));
        table.AddRow("faulty canary", s.FaultyCanary.RolledBack ? $"[green]rolled back[/] after {Intervals(s.FaultyCanary.AnalysisIntervals)} ({Markup.Escape(string.Join(", ", s.FaultyCanary.FailedGates.Select(g => g.Gate)))})" : $"[red]{Markup.Escape(s.FaultyCanary.Phase)}[/]", string.Empty);
        table.AddRow("audit", s.Audit.Verified ? $"[green]verified[/]: {s.Audit.Entries} entries, signed checkpoint" : "[red]FAILED[/]", Secs("audit"));
        var failed = s.Checks.Where(c => !c.Ok).ToList();
        table.AddRow("[bold]total[/]", failed.Count == 0
            ? $"[green]all {s.Checks.Count} checked outcomes as expected[/]"
            : $"[red]{failed.Count} of {s.Checks.Count} checked outcomes NOT as expected[/]: " + Markup.Escape(string.Join("; ", failed.Select(c => $"{c.Step}: expected {c.Expected}, got {Shorten(c.Actual, 120)}"))), string.Create(Inv, $"{s.ElapsedSeconds:0.0} s"));
        console.Write(table);
        console.MarkupLine($"registry, audit log, signing key and drift profile kept in [bold]{Markup.Escape(s.OutputDirectory)}[/]");
        // One command a line, written past the renderer: wrapped at the console's width, a command copied from a log or a
        // narrow terminal broke in the middle of a path.
        console.MarkupLine("inspect:");
        console.Profile.Out.Writer.WriteLine($"  har models list --registry {Path.Combine(s.OutputDirectory, "registry")}");
        console.Profile.Out.Writer.WriteLine($"  har audit verify --log {s.Audit.Directory} --vkey '{s.Audit.VerifierKey}'");
    }

    /// <summary>One stream the demo plays: interleaved frames and a label name (or null) per frame.</summary>
    private sealed record Stream(string Id, int Subject, float[] Samples, string?[] Labels)
    {
        public int Length => Samples.Length / 6;
    }
}
