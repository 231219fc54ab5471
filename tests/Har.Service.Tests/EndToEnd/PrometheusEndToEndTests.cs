using System.Collections.Concurrent;
using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Text;
using System.Text.Json;
using System.Text.RegularExpressions;
using Har.Inference.Data;
using Har.Testing;

namespace Har.Service.Tests.EndToEnd;

/// <summary>
/// The issue's end-to-end proof, on loopback and bounded in time: the real service and a real Prometheus
/// scraping it (1 s) with the committed rules (evaluated every 1 s); traffic from the shared HAPT test
/// subjects through <c>POST /v1/streams/{id}/samples</c>; every PromQL expression of the Grafana dashboard
/// and of the rules returns data; a canary of a faulty candidate is rolled back automatically, seen in the
/// API, in the metrics (through Prometheus) and in the audit log; <c>har audit verify</c> passes on the log.
/// </summary>
public sealed partial class PrometheusEndToEndTests
{
    // The faulty candidate: the Har.Inference fixture "tiny-huge-logits" 1.2.0 — a valid model with a valid
    // card, but random weights whose logits are scaled ×2000, so it is (over)confident and its predictions
    // have nothing to do with the champion's: the canary's agreement and class-mix gates fail against the
    // mirrored champion predictions (or, earlier, the smoke test's agreement check), and the controller
    // rolls back on its own.
    private const string FaultyFixture = "tiny-huge-logits-1.2.0.onnx";
    private const string FaultyVersion = "1.2.0";
    private const int Streams = 48;

    // One of the streams is a device whose gyroscope reports deg/s where rad/s is expected: its drift alarm (a unit
    // error is decisive on one window) must show in GET /v1/drift/alarms, in the by-cause gauge and in the alert.
    private const string DegreesDevice = "e2e-gyroscope-in-deg-s";
    private const int FramesPerPost = 500;

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task HaptTraffic_DashboardAndRulesHaveData_FaultyCanaryRolledBack_AuditLogVerifies()
    {
        var hapt = TestPaths.RequireSharedData();
        var prometheusExe = PrometheusProcess.FindExecutable();
        Assert.True(prometheusExe is not null, "The end-to-end test needs Prometheus: `prometheus` is not on PATH. Install the Debian package (apt-get install -y prometheus; .ci/steps/10-prometheus.sh does this in CI).");

        using var budget = CancellationTokenSource.CreateLinkedTokenSource(Ct);
        budget.CancelAfter(TimeSpan.FromMinutes(10)); // a bound against a hang, not a speed threshold: building the drift profile alone took 170 s on a loaded machine
        var ct = budget.Token;
        var work = Directory.CreateTempSubdirectory("har-e2e-");
        var log = new StringBuilder();
        var watch = Stopwatch.StartNew();
        void Note(string message) => log.AppendLine(CultureInfo.InvariantCulture, $"[{watch.Elapsed.TotalSeconds,6:0.0}s] {message}");

        try
        {
            // A drift reference profile from the HAPT training subjects (the CLI), while the test subjects load; with the
            // bundled champion's outputs and its accuracy on the validation subjects (what the estimated accuracy and its
            // alert need), as an operator builds it.
            var profile = Path.Combine(work.FullName, "hapt-train-profile.json");
            string[] withModel = ServiceProcess.HasBundledModels
                ? ["--model", ServiceFixture.ChampionPath(ServiceProcess.BundledModelsDirectory), "--accuracy-subjects", "28", "29", "30"]
                : [];
            var profileRun = RunCliAsync(ct, ["drift", "profile", "--data", hapt, "--split", "train", "-o", profile, "--window", "500", .. withModel]);
            var sessionsLoad = Task.Run(() => SensorDataset.Load(hapt, "test", cancellationToken: ct), ct);
            var (profileExit, profileOutput) = await profileRun;
            Assert.True(profileExit == 0, $"har drift profile failed ({profileExit}):\n{profileOutput}");
            Note("drift profile built");

            await using var service = await ServiceProcess.StartAsync(new Dictionary<string, string>
            {
                ["Har:Service:RolloutAnalysisInterval"] = "00:00:05",
                ["Har:Service:DriftScoreInterval"] = "00:00:02",
                ["Har:Service:DriftWindowFrames"] = "500",
                ["Har:Service:DriftProfilePath"] = profile,

                // 48 simulated devices share one address (127.0.0.1) and post 8 at a time: the per-client limits
                // of an anonymous address (docs/hardening.md, point 6) would throttle what is 48 clients.
                ["Har:Service:AnonymousWindowsPerSecond"] = "1000000",
                ["Har:Service:MaxConcurrentPredictionsPerClient"] = "16",
            }, cancellationToken: ct);
            Note($"service ready at {service.BaseAddress} (models: {(ServiceProcess.HasBundledModels ? "bundled" : "test fixtures")})");

            var rules = Path.Combine(TestPaths.RepoRoot, "deploy", "prometheus", "har-rules.yml");
            await using var prometheus = await PrometheusProcess.StartAsync(prometheusExe!, work.FullName, service.BaseAddress, rules, ct);
            Note($"prometheus ready at {prometheus.BaseAddress}");

            var sessions = await sessionsLoad;
            Assert.NotEmpty(sessions);
            Note($"{sessions.Count} HAPT test sessions loaded");

            // Traffic: 48 streams (slices of the test recordings), 500 frames (10 s) per post, 8 posts in flight.
            using var stopTraffic = CancellationTokenSource.CreateLinkedTokenSource(ct);
            var traffic = new TrafficStats();
            var trafficTask = DriveTrafficAsync(service, sessions, traffic, stopTraffic.Token);

            using var operatorClient = service.CreateClient(service.OperatorKey);
            using var auditor = service.CreateClient(service.AuditorKey);
            using var anonymous = service.CreateClient();

            // Drift: the monitor scores the ingested frames.
            await WaitUntilAsync(async () =>
            {
                using var drift = JsonDocument.Parse(await anonymous.GetStringAsync("/v1/drift", ct));
                return drift.RootElement.GetProperty("scored").GetBoolean();
            }, TimeSpan.FromSeconds(60), "the drift monitor never produced a report", ct);
            Note($"drift report scored; {traffic}");

            // The device alarm: listed with its cause, in the device's own report, in the by-cause gauge and in the alert.
            JsonElement alarms = default;
            await WaitUntilAsync(async () =>
            {
                using var doc = JsonDocument.Parse(await anonymous.GetStringAsync("/v1/drift/alarms", ct));
                alarms = doc.RootElement.Clone();
                return alarms.GetProperty("alarmed").EnumerateArray().Any(a => a.GetProperty("device").GetString() == DegreesDevice);
            }, TimeSpan.FromSeconds(60), $"{DegreesDevice} never appeared in GET /v1/drift/alarms", ct, () => alarms.ValueKind == JsonValueKind.Undefined ? "" : alarms.ToString());
            var listed = alarms.GetProperty("alarmed").EnumerateArray().Single(a => a.GetProperty("device").GetString() == DegreesDevice).GetProperty("alarm");
            Assert.True(listed.GetProperty("raised").GetBoolean());
            Assert.Equal("Units", listed.GetProperty("cause").GetString());
            Assert.Contains("deg/s", listed.GetProperty("diagnosis").GetString(), StringComparison.Ordinal);
            using (var own = JsonDocument.Parse(await anonymous.GetStringAsync($"/v1/drift?device={DegreesDevice}", ct)))
            {
                var report = own.RootElement.GetProperty("report");
                Assert.Equal("Units", report.GetProperty("alarm").GetProperty("cause").GetString());
                Assert.Equal(JsonValueKind.Array, report.GetProperty("unchecked").ValueKind);
            }

            // The list's filter and paging: by cause, and one device per page with a cursor that moves past it.
            using (var units = JsonDocument.Parse(await anonymous.GetStringAsync("/v1/drift/alarms?cause=Units", ct)))
            {
                Assert.Contains(units.RootElement.GetProperty("alarmed").EnumerateArray(), a => a.GetProperty("device").GetString() == DegreesDevice);
                Assert.All(units.RootElement.GetProperty("alarmed").EnumerateArray(), a => Assert.Equal("Units", a.GetProperty("alarm").GetProperty("cause").GetString()));
            }

            using (var signFlips = JsonDocument.Parse(await anonymous.GetStringAsync("/v1/drift/alarms?cause=SignFlip", ct)))
            {
                Assert.DoesNotContain(signFlips.RootElement.GetProperty("alarmed").EnumerateArray(), a => a.GetProperty("device").GetString() == DegreesDevice);
            }

            var paged = new List<string>();
            string? cursor = null;
            do
            {
                using var pageDoc = JsonDocument.Parse(await anonymous.GetStringAsync($"/v1/drift/alarms?page_size=1{(cursor is null ? "" : "&page=" + Uri.EscapeDataString(cursor))}", ct));
                var devices = pageDoc.RootElement.GetProperty("alarmed").EnumerateArray().Select(a => a.GetProperty("device").GetString()!).ToArray();
                Assert.True(devices.Length <= 1);
                paged.AddRange(devices);
                cursor = pageDoc.RootElement.GetProperty("next_page").GetString();
                Assert.True(cursor is null || cursor == devices[^1], $"next_page '{cursor}' is not the page's last device");
            }
            while (cursor is not null && paged.Count < 100);
            Assert.Equal(paged.Order(StringComparer.Ordinal), paged);
            Assert.Equal(paged.Distinct(StringComparer.Ordinal).Count(), paged.Count);

            // The pooled outputs of all devices with the estimated accuracy against the reference accuracy (the profile
            // holds the champion's accuracy on subjects 28-30 when the bundled models serve).
            if (ServiceProcess.HasBundledModels)
            {
                JsonElement outputs = default;
                await WaitUntilAsync(async () =>
                {
                    using var doc = JsonDocument.Parse(await anonymous.GetStringAsync("/v1/drift", ct));
                    outputs = doc.RootElement.GetProperty("outputs").Clone();
                    return outputs.ValueKind == JsonValueKind.Object && outputs.GetProperty("estimated_accuracy").ValueKind == JsonValueKind.Number;
                }, TimeSpan.FromSeconds(60), "GET /v1/drift never showed an estimated accuracy", ct, () => outputs.ToString());
                Assert.InRange(outputs.GetProperty("estimated_accuracy").GetDouble(), 0.0, 1.0);
                Assert.InRange(outputs.GetProperty("reference_accuracy").GetDouble(), 0.5, 1.0);
                Assert.True(outputs.GetProperty("predictions").GetInt32() > 0);
                Assert.Contains("estimated accuracy", outputs.GetProperty("summary").GetString(), StringComparison.Ordinal);
                Note($"pooled outputs: {outputs.GetProperty("summary").GetString()}");
            }

            Note($"device alarm listed: {alarms.GetProperty("alarmed").GetArrayLength()} of {alarms.GetProperty("devices").GetInt32()} devices alarm ({string.Join(", ", alarms.GetProperty("alarmed").EnumerateArray().Select(a => $"{a.GetProperty("device").GetString()}: {a.GetProperty("alarm").GetProperty("cause").GetString()}"))})");
            await WaitUntilAsync(async () =>
            {
                var samples = await prometheus.QueryAsync("har_drift_devices_alarmed_by_cause{job=\"har-service\",cause=\"Units\"}", ct);
                return samples.Count == 1 && samples[0].Value >= 1;
            }, TimeSpan.FromSeconds(20), "Prometheus never saw har_drift_devices_alarmed_by_cause{cause=\"Units\"} >= 1", ct);
            IReadOnlyList<(string Name, string State, IReadOnlyDictionary<string, string> Labels)> alerts = [];
            await WaitUntilAsync(async () =>
            {
                alerts = await prometheus.AlertsAsync(ct);
                return alerts.Any(a => a.Name == "HarDeviceDriftAlarm" && a.Labels.GetValueOrDefault("cause") == "Units" && a.State is "pending" or "firing");
            }, TimeSpan.FromSeconds(20), "the HarDeviceDriftAlarm alert never became pending for cause Units", ct, () => string.Join("\n", alerts.Select(a => $"  {a.Name} {a.State} {string.Join(",", a.Labels)}")));
            Note("device alarm seen in Prometheus (gauge and pending alert)");

            // The faulty candidate, registered and canaried through the API.
            var faulty = await File.ReadAllBytesAsync(Path.Combine(ServiceProcess.FixturesDirectory, FaultyFixture), ct);
            using (var register = await operatorClient.PostAsync("/v1/models?approved_by=e2e-test&run_id=faulty-candidate", ServiceFixture.Bytes(faulty, "application/octet-stream"), ct))
            {
                Assert.True(register.StatusCode == HttpStatusCode.Created, $"register: {(int)register.StatusCode} {await register.Content.ReadAsStringAsync(ct)}");
            }

            using (var start = await operatorClient.PostAsync("/v1/rollouts", ServiceFixture.Json($"{{\"candidate\":\"{FaultyVersion}\",\"strategy\":\"canary\",\"reason\":\"end-to-end test: faulty candidate\"}}"), ct))
            {
                Assert.True(start.StatusCode == HttpStatusCode.Accepted, $"start canary: {(int)start.StatusCode} {await start.Content.ReadAsStringAsync(ct)}");
            }

            Note("canary of the faulty candidate started");
            JsonElement rolledBack = default;
            await WaitUntilAsync(async () =>
            {
                using var status = JsonDocument.Parse(await anonymous.GetStringAsync("/v1/rollouts/current", ct));
                rolledBack = status.RootElement.Clone();
                return rolledBack.GetProperty("phase").GetString() == "RolledBack";
            }, TimeSpan.FromSeconds(90), "the faulty canary was not rolled back", ct, () => rolledBack.ValueKind == JsonValueKind.Undefined ? "" : rolledBack.ToString());
            var champion = rolledBack.GetProperty("champion").GetString();
            Assert.Equal(champion, rolledBack.GetProperty("current_version").GetString());
            Assert.NotEqual(FaultyVersion, rolledBack.GetProperty("current_version").GetString());
            Assert.Equal(0, rolledBack.GetProperty("candidate_percent").GetDouble());
            Note($"rolled back: {rolledBack.GetProperty("message")}; last analysis: {(rolledBack.TryGetProperty("last_analysis", out var la) ? la.ToString() : "none")}");

            // After the rollback, all traffic is the champion's again.
            var before = traffic.ByVersion.GetValueOrDefault(FaultyVersion);
            var servedBefore = traffic.Windows;
            await WaitUntilAsync(() => Task.FromResult(traffic.Windows > servedBefore + 200), TimeSpan.FromSeconds(30), "no traffic after the rollback", ct);
            Assert.Equal(before, traffic.ByVersion.GetValueOrDefault(FaultyVersion));

            // Metrics: the rollback counter, through Prometheus.
            await WaitUntilAsync(async () =>
            {
                var samples = await prometheus.QueryAsync("har_rollout_rollbacks_total{job=\"har-service\",trigger=\"automatic\"}", ct);
                return samples.Count == 1 && samples[0].Value >= 1;
            }, TimeSpan.FromSeconds(20), "Prometheus never saw har_rollout_rollbacks_total{trigger=\"automatic\"} >= 1", ct);
            Note("rollback seen in Prometheus");

            // Audit log: the rollback record and the rollout event, with the failed gate's evidence.
            using (var rollbackRecords = JsonDocument.Parse(await auditor.GetStringAsync("/v1/audit/events?event_type=rollback", ct)))
            {
                var entry = Assert.Single(rollbackRecords.RootElement.GetProperty("entries").EnumerateArray());
                Assert.Equal("Rollback", entry.GetProperty("kind").GetString());
                Assert.Equal(FaultyVersion, entry.GetProperty("record").GetProperty("from_version").GetString());
                Assert.Equal(champion, entry.GetProperty("record").GetProperty("to_version").GetString());
            }

            using (var rollbackEvents = JsonDocument.Parse(await auditor.GetStringAsync("/v1/audit/events?event_type=rollout.rollback", ct)))
            {
                Assert.Single(rollbackEvents.RootElement.GetProperty("entries").EnumerateArray());
            }

            Note("rollback found in the audit log");

            // Every PromQL expression of the dashboard and of the rules returns data.
            var expressions = new List<(string Source, string Expr)>();
            using (var dashboard = JsonDocument.Parse(await File.ReadAllTextAsync(Path.Combine(TestPaths.RepoRoot, "deploy", "grafana", "har-dashboard.json"), ct)))
            {
                foreach (var panel in dashboard.RootElement.GetProperty("panels").EnumerateArray())
                {
                    if (panel.TryGetProperty("targets", out var targets))
                    {
                        expressions.AddRange(targets.EnumerateArray().Select(t => ($"dashboard '{panel.GetProperty("title").GetString()}'", t.GetProperty("expr").GetString()!)));
                    }
                }
            }

            var loaded = await prometheus.RulesAsync(ct);
            Assert.Contains(loaded, r => r.Type == "recording");
            Assert.Contains(loaded, r => r.Type == "alerting");
            foreach (var rule in loaded)
            {
                if (rule.Type == "recording")
                {
                    expressions.Add(($"recording rule {rule.Name}", rule.Query));
                    expressions.Add(($"recorded series {rule.Name}", rule.Name));
                }
                else if (rule.Name == "HarEstimatedAccuracyDrop" && !ServiceProcess.HasBundledModels)
                {
                    // The fixture models have no labelled accuracy in the profile, so no estimate to alert on.
                    continue;
                }
                else if (rule.Name == "HarFleetClockOffset")
                {
                    // A fleet's metric (measured at each heartbeat against the database): one service exports none.
                    continue;
                }
                else
                {
                    // The alert's quantity, without its threshold comparison (whether it fires is promtool's test).
                    var match = Comparison().Match(rule.Query);
                    Assert.True(match.Success, $"alert {rule.Name}: cannot split '{rule.Query}' into an expression and a threshold");
                    expressions.Add(($"alert {rule.Name}", match.Groups["expr"].Value));
                }
            }

            var missing = expressions.ToDictionary(e => e, _ => "");
            await WaitUntilAsync(async () =>
            {
                foreach (var e in missing.Keys.ToArray())
                {
                    var samples = await prometheus.QueryAsync(e.Expr, ct);
                    if (samples.Count > 0)
                    {
                        missing.Remove(e);
                    }
                }

                return missing.Count == 0;
            }, TimeSpan.FromSeconds(45), "some expressions never returned data", ct, () => string.Join("\n", missing.Keys.Select(e => $"  {e.Source}: {e.Expr}")));
            Note($"all {expressions.Count} expressions returned data");

            await stopTraffic.CancelAsync();
            await trafficTask;
            Note($"traffic stopped: {traffic}");
            Assert.Equal(0, traffic.ServerErrors);
            Assert.True(traffic.Windows > 0);

            // A signed checkpoint covering the whole log, then the offline verifier with the trusted key.
            using (var proof = await auditor.GetAsync("/v1/audit/proof/0", ct))
            {
                Assert.Equal(HttpStatusCode.OK, proof.StatusCode);
            }

            var vkey = Path.Combine(service.DataDirectory, "keys", "audit.vkey");
            var (verifyExit, verifyOutput) = await RunCliAsync(ct, "audit", "verify", "--log", Path.Combine(service.DataDirectory, "audit"), "--vkey", vkey);
            Note($"har audit verify: exit {verifyExit}\n{verifyOutput.Trim()}");
            Assert.True(verifyExit == 0, $"har audit verify failed ({verifyExit}):\n{verifyOutput}");
            Assert.False(service.HasExited);
            TestContext.Current.SendDiagnosticMessage(log.ToString());
        }
        catch (Exception ex) when (ex is not Xunit.Sdk.IAssertionException && budget.IsCancellationRequested && !Ct.IsCancellationRequested)
        {
            throw new TimeoutException($"The end-to-end test exceeded its 10-minute bound.\n{log}", ex);
        }
        catch (Exception ex) when (ex is Xunit.Sdk.IAssertionException)
        {
            throw new InvalidOperationException($"{ex.Message}\n--- progress ---\n{log}", ex);
        }
        finally
        {
            try
            {
                work.Delete(recursive: true);
            }
            catch (IOException)
            {
            }
        }
    }

    [GeneratedRegex(@"^(?<expr>.+?)\s*(>=|<=|==|!=|>|<)\s*[-+0-9.eE]+\s*$", RegexOptions.Singleline)]
    private static partial Regex Comparison();

    private static async Task DriveTrafficAsync(ServiceProcess service, List<SensorSession> sessions, TrafficStats stats, CancellationToken ct)
    {
        // Slices of the recordings as independent streams (so the canary's share of streams is not empty).
        var slices = new List<(string Id, float[] Samples)>();
        var perStream = sessions.Sum(s => s.Length) / Streams;
        foreach (var s in sessions)
        {
            for (var start = 0; start + perStream <= s.Length && slices.Count < Streams; start += perStream)
            {
                slices.Add(($"hapt-s{s.Subject}-r{s.Session}-{start}", s.Samples.AsSpan(start * SensorSession.Channels, perStream * SensorSession.Channels).ToArray()));
            }
        }

        // The gyroscope in deg/s (× 180/π) under its own device id, on the stream that turns most: the unit check needs
        // rotation to show the factor. On a stream that is mostly still postures (the first one: HAPT sessions start
        // standing, sitting, lying) its brisk transitions clip at the range before the factor shows, and the alarm
        // was named Saturation in some runs, depending on which windows the traffic's timing scored first.
        var turning = slices.Select(sl => Enumerable.Range(0, sl.Samples.Length / SensorSession.Channels)
            .Average(f => Math.Abs(sl.Samples[f * SensorSession.Channels + 3]) + Math.Abs(sl.Samples[f * SensorSession.Channels + 4]) + Math.Abs(sl.Samples[f * SensorSession.Channels + 5]))).ToList();
        var chosen = turning.IndexOf(turning.Max());
        var degrees = (float[])slices[chosen].Samples.Clone();
        for (var i = 0; i < degrees.Length; i++)
        {
            degrees[i] *= i % SensorSession.Channels >= 3 ? (float)(180 / Math.PI) : 1;
        }

        slices[chosen] = (DegreesDevice, degrees);
        using var client = service.CreateClient();
        var positions = new int[slices.Count];
        var next = -1;
        var workers = Enumerable.Range(0, 8).Select(async _ =>
        {
            while (!ct.IsCancellationRequested)
            {
                var i = (int)((uint)Interlocked.Increment(ref next) % (uint)slices.Count);
                var (id, samples) = slices[i];
                float[] chunk;
                lock (slices)
                {
                    var frames = samples.Length / SensorSession.Channels;
                    if (positions[i] + FramesPerPost > frames)
                    {
                        positions[i] = 0; // replay the slice from its start (a new stretch for the windower)
                    }

                    chunk = samples.AsSpan(positions[i] * SensorSession.Channels, FramesPerPost * SensorSession.Channels).ToArray();
                    positions[i] += FramesPerPost;
                }

                var bytes = new byte[chunk.Length * sizeof(float)];
                Buffer.BlockCopy(chunk, 0, bytes, 0, bytes.Length);
                try
                {
                    using var response = await client.PostAsync($"/v1/streams/{id}/samples", ServiceFixture.Bytes(bytes, "application/octet-stream"), ct);
                    if ((int)response.StatusCode >= 500)
                    {
                        Interlocked.Increment(ref stats.ServerErrors);
                        continue;
                    }

                    response.EnsureSuccessStatusCode();
                    using var json = JsonDocument.Parse(await response.Content.ReadAsStringAsync(ct));
                    foreach (var p in json.RootElement.GetProperty("predictions").EnumerateArray())
                    {
                        Interlocked.Increment(ref stats.Windows);
                        stats.ByVersion.AddOrUpdate(p.GetProperty("model_version").GetString()!, 1, (_, n) => n + 1);
                    }
                }
                catch (OperationCanceledException) when (ct.IsCancellationRequested)
                {
                    return;
                }
            }
        }).ToArray();
        await Task.WhenAll(workers);
    }

    private static async Task WaitUntilAsync(Func<Task<bool>> condition, TimeSpan timeout, string failure, CancellationToken ct, Func<string>? detail = null)
    {
        var watch = Stopwatch.StartNew();
        while (!await condition())
        {
            if (watch.Elapsed > timeout)
            {
                Assert.Fail($"{failure} within {timeout.TotalSeconds:0} s.\n{detail?.Invoke()}");
            }

            // Polling an external process (Prometheus, the service's reconcile loop): there is no signal to wait on.
            await Task.Delay(TimeSpan.FromMilliseconds(500), ct);
        }
    }

    private static async Task<(int ExitCode, string Output)> RunCliAsync(CancellationToken ct, params string[] args)
    {
        var psi = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        psi.ArgumentList.Add(ServiceProcess.CliDll);
        foreach (var a in args)
        {
            psi.ArgumentList.Add(a);
        }

        using var process = Process.Start(psi) ?? throw new InvalidOperationException("could not start the har CLI");
        var stdout = process.StandardOutput.ReadToEndAsync(ct);
        var stderr = process.StandardError.ReadToEndAsync(ct);
        try
        {
            await process.WaitForExitAsync(ct);
        }
        catch (OperationCanceledException)
        {
            process.Kill(entireProcessTree: true);
            throw;
        }

        return (process.ExitCode, await stdout + await stderr);
    }

    private sealed class TrafficStats
    {
        public long Windows;
        public long ServerErrors;

        public ConcurrentDictionary<string, long> ByVersion { get; } = new(StringComparer.Ordinal);

        public override string ToString() => $"{Windows} windows scored ({string.Join(", ", ByVersion.Select(kv => $"{kv.Key}: {kv.Value}"))}), {ServerErrors} server errors";
    }
}
