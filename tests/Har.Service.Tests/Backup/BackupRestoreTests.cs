using System.Diagnostics;
using System.Formats.Tar;
using System.IO.Compression;
using System.Net;
using System.Security.Cryptography;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace Har.Service.Tests.Backup;

/// <summary>
/// Issue 14 (backup and restore): a backup taken with <c>har backup create --service</c> while the real service serves
/// predictions and appends to its audit log is restored with <c>har backup restore</c> into an empty folder, verified,
/// and served by a second service started on it; a non-empty target and tampered archives are refused with an error
/// that names what was wrong, and nothing is left behind.
/// </summary>
public sealed class BackupRestoreTests
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task Backup_TakenUnderTraffic_RestoredIntoEmptyFolder_VerifiesAndServes()
    {
        var root = Directory.CreateTempSubdirectory("har-backup-test-").FullName;
        try
        {
            var archives = Path.Combine(root, "archives");
            var restored = Path.Combine(root, "restored");
            string current;
            string[] versions;
            string vkey;
            var labelled = 0;
            await using (var service = await ServiceProcess.StartAsync(new Dictionary<string, string> { [ServiceProcess.KeysInFile] = "" }, cancellationToken: Ct))
            {
                using var operatorClient = service.CreateClient(service.OperatorKey);
                using var predictor = service.CreateClient(service.PredictorKey);
                var window = Window(service.ModelsDirectory);
                (current, versions) = await ModelsAsync(operatorClient);
                vkey = File.ReadAllText(Path.Combine(service.DataDirectory, "keys", "audit.vkey")).Trim();

                // A device streams and its windows are labelled (the accuracy gate's evidence, which the archive keeps).
                for (var i = 0; i < 6; i++)
                {
                    using var append = await predictor.PostAsync("/v1/streams/labelled-device/samples", ServiceFixture.Json($"{{\"samples\":[{window}]}}"), Ct);
                    Assert.Equal(HttpStatusCode.OK, append.StatusCode);
                }

                using (var feedback = await operatorClient.PostAsync("/v1/feedback", ServiceFixture.Json("{\"labels\":[{\"stream_id\":\"labelled-device\",\"activity\":\"WALKING\",\"start_frame\":0,\"end_frame\":100000}]}"), Ct))
                {
                    Assert.Equal(HttpStatusCode.OK, feedback.StatusCode);
                    labelled = JsonNode.Parse(await feedback.Content.ReadAsStringAsync(Ct))!["labelled_windows"]!.GetValue<int>();
                }

                Assert.True(labelled > 0, "no window was labelled");

                // Traffic while the backup runs: predictions, and refused rollout commands (each one an audit append).
                using var stop = CancellationTokenSource.CreateLinkedTokenSource(Ct);
                long predictions = 0, appends = 0;
                var traffic = Task.Run(async () =>
                {
                    while (!stop.IsCancellationRequested)
                    {
                        using (var p = await predictor.PostAsync("/v1/predict", ServiceFixture.Json($"{{\"windows\":[[{window}]]}}"), stop.Token))
                        {
                            Assert.Equal(HttpStatusCode.OK, p.StatusCode);
                            Interlocked.Increment(ref predictions);
                        }

                        using (var a = await operatorClient.PostAsync("/v1/rollouts/current/pause", null, stop.Token))
                        {
                            Assert.Equal(HttpStatusCode.Conflict, a.StatusCode);
                            Interlocked.Increment(ref appends);
                        }
                    }
                }, stop.Token);
                Assert.True(await ServiceQueries.EventuallyAsync(() => Task.FromResult(Interlocked.Read(ref appends) >= 5), TimeSpan.FromSeconds(60), Ct), "no traffic before the backup");
                var (before, after) = (Interlocked.Read(ref predictions), 0L);

                var (code, output) = await RunCliAsync("backup", "create", "--service", service.BaseAddress.ToString(), "--api-key", service.OperatorKey, "--out", archives, "--reason", "backup test");
                Assert.True(code == 0, output);
                after = Interlocked.Read(ref predictions);
                await stop.CancelAsync();
                try
                {
                    await traffic;
                }
                catch (OperationCanceledException)
                {
                }

                Assert.True(after > before, $"no prediction was served while the backup ran ({before} before, {after} after)");
                Assert.Contains("written to", output, StringComparison.Ordinal);
                Assert.Contains($" {labelled} labelled windows", output, StringComparison.Ordinal);

                // The CLI took the archive from the POST's answer: behind a round-robin proxy a second request for it
                // reached another replica of a fleet, which does not hold it (404), and the backup failed.
                var downloads = await ServiceQueries.MetricAsync(operatorClient, "http_requests_received_total", Ct);
                Assert.Equal(0, downloads.Where(kv => kv.Key.Contains("endpoint=\"/v1/backups/{id}\"", StringComparison.Ordinal)).Sum(kv => kv.Value));
                Assert.Contains(downloads, kv => kv.Key.Contains("endpoint=\"/v1/backups/\"", StringComparison.Ordinal) && kv.Key.Contains("code=\"201\"", StringComparison.Ordinal) && kv.Value >= 1);

                // The log kept growing after the backup record; the archive holds the log up to and including it.
                var created = await ServiceQueries.AuditEntriesAsync(operatorClient, "backup.created", Ct);
                Assert.Single(created);
            }

            var archive = Assert.Single(Directory.GetFiles(archives, "har-backup-*.tar.gz"));

            // Restore into an empty folder, pinned to the service's verifier key.
            var (restoreCode, restoreOutput) = await RunCliAsync("backup", "restore", archive, "--to", restored, "--vkey", vkey, "--actor", "restore-test");
            Assert.True(restoreCode == 0, restoreOutput);
            Assert.Contains("pinned key", restoreOutput, StringComparison.Ordinal);
            Assert.Contains($"current {current}", restoreOutput, StringComparison.Ordinal);
            Assert.Contains($"; {labelled} labelled windows", restoreOutput, StringComparison.Ordinal);

            // A second restore into the same (now non-empty) folder is refused and changes nothing there.
            var entriesBefore = new FileInfo(Path.Combine(restored, "audit", "entries.log")).Length;
            var (again, againOutput) = await RunCliAsync("backup", "restore", archive, "--to", restored);
            Assert.NotEqual(0, again);
            Assert.Contains("not empty", againOutput, StringComparison.Ordinal);
            Assert.Equal(entriesBefore, new FileInfo(Path.Combine(restored, "audit", "entries.log")).Length);

            // The restored audit log verifies on its own (har audit verify, pinned key).
            var (verifyCode, verifyOutput) = await RunCliAsync("audit", "verify", "--log", Path.Combine(restored, "audit"), "--vkey", vkey);
            Assert.True(verifyCode == 0, verifyOutput);

            // A service started on the restored folder serves the same registry and predicts.
            await using var second = await ServiceProcess.StartAsync(new Dictionary<string, string> { ["Har:Service:DataDirectory"] = restored }, cancellationToken: Ct);
            using var op = second.CreateClient(second.OperatorKey);
            var (restoredCurrent, restoredVersions) = await ModelsAsync(op);
            Assert.Equal(current, restoredCurrent);
            Assert.Equal(versions, restoredVersions);
            using var predict = await second.CreateClient().PostAsync("/v1/predict", ServiceFixture.Json($"{{\"windows\":[[{Window(second.ModelsDirectory)}]]}}"), Ct);
            Assert.True(predict.StatusCode == HttpStatusCode.OK, await predict.Content.ReadAsStringAsync(Ct));
            var restoredEvents = await ServiceQueries.AuditEntriesAsync(op, "backup.restored", Ct);
            Assert.Equal("restore-test", Assert.Single(restoredEvents).GetProperty("record").GetProperty("actor").GetString());
            using var model = await op.GetAsync($"/v1/models/{current}", Ct);
            Assert.Contains("\"verified\":true", await model.Content.ReadAsStringAsync(Ct), StringComparison.Ordinal);

            // The restored service's accuracy gate holds the labelled windows (before, it started with none).
            Assert.Contains($"har_model_labelled_windows{{model=\"{current}\"}} {labelled}\n", await second.CreateClient().GetStringAsync("/metrics", Ct), StringComparison.Ordinal);
        }
        finally
        {
            Directory.Delete(root, recursive: true);
        }
    }

    [Fact]
    public async Task LastSuccessGauge_SetByTheBackup_AndFromTheNewestArchiveAtStart()
    {
        var root = Directory.CreateTempSubdirectory("har-backup-gauge-").FullName;
        try
        {
            var settings = new Dictionary<string, string> { ["Har:Service:Backup:Directory"] = root, ["Har:Service:Backup:Scheduled"] = "true" };
            double taken;
            await using (var service = await ServiceProcess.StartAsync(settings, cancellationToken: Ct))
            {
                using var op = service.CreateClient(service.OperatorKey);
                Assert.Equal(0, await GaugeAsync(op, "har_backup_last_success_timestamp_seconds")); // no archive yet: the alerts read "never"
                Assert.Equal(1, await GaugeAsync(op, "har_backup_scheduled"));

                using var created = await op.PostAsync("/v1/backups", ServiceFixture.Json("{\"reason\":\"gauge test\"}"), Ct);
                var body = await created.Content.ReadAsStringAsync(Ct);
                Assert.True(created.StatusCode == HttpStatusCode.Created, body);
                var id = JsonNode.Parse(body)!["backup_id"]!.GetValue<string>();
                Assert.True(Har.Deployment.DeploymentBackup.TryGetCreatedAt(id + ".tar.gz", out var createdAt));
                taken = createdAt.ToUnixTimeMilliseconds() / 1000.0;
                Assert.Equal(taken, await GaugeAsync(op, "har_backup_last_success_timestamp_seconds"));

                // Asked for the archive itself, the answer is the archive, with the summary in a header: its SHA-256 is
                // the one the summary names, and the bytes are those of the file the service kept.
                using var request = new HttpRequestMessage(HttpMethod.Post, "/v1/backups") { Content = ServiceFixture.Json("{\"reason\":\"archive in the answer\"}") };
                request.Headers.Accept.ParseAdd("application/gzip");
                using var withArchive = await op.SendAsync(request, Ct);
                Assert.Equal(HttpStatusCode.Created, withArchive.StatusCode);
                Assert.Equal("application/gzip", withArchive.Content.Headers.ContentType?.MediaType);
                var summary = JsonNode.Parse(Convert.FromBase64String(Assert.Single(withArchive.Headers.GetValues("Har-Backup-Summary"))))!;
                var secondId = summary["backup_id"]!.GetValue<string>();
                Assert.NotEqual(id, secondId);
                Assert.Equal($"/v1/backups/{secondId}", withArchive.Headers.Location?.ToString());
                var bytes = await withArchive.Content.ReadAsByteArrayAsync(Ct);
                Assert.Equal(summary["sha256"]!.GetValue<string>(), Convert.ToHexStringLower(SHA256.HashData(bytes)));
                Assert.Equal(summary["pruned"]!.AsArray().Count, summary["pruned_total"]!.GetValue<int>()); // bounded in the header
                Assert.Equal(await File.ReadAllBytesAsync(Path.Combine(root, secondId + ".tar.gz"), Ct), bytes);
                Assert.True(Har.Deployment.DeploymentBackup.TryGetCreatedAt(secondId + ".tar.gz", out var secondAt));
                taken = secondAt.ToUnixTimeMilliseconds() / 1000.0;
            }

            // Another process (a restart, or another replica) with the same backup folder reports the newest archive in it.
            await using (var restarted = await ServiceProcess.StartAsync(settings, cancellationToken: Ct))
            {
                using var op = restarted.CreateClient(restarted.OperatorKey);
                Assert.Equal(taken, await GaugeAsync(op, "har_backup_last_success_timestamp_seconds"));
            }
        }
        finally
        {
            Directory.Delete(root, recursive: true);
        }

        static async Task<double> GaugeAsync(HttpClient client, string name) => Assert.Single(await ServiceQueries.MetricAsync(client, name, Ct)).Value;
    }

    [Fact]
    public async Task TamperedArchive_Refused_WithTheReason_AndNothingLeftBehind()
    {
        var root = Directory.CreateTempSubdirectory("har-backup-tamper-").FullName;
        try
        {
            string archive;
            await using (var service = await ServiceProcess.StartAsync(new Dictionary<string, string> { ["Har:Service:Backup:Keep"] = "2" }, cancellationToken: Ct))
            {
                using var op = service.CreateClient(service.OperatorKey);
                string? id = null;
                for (var i = 0; i < 3; i++)
                {
                    using var created = await op.PostAsync("/v1/backups", ServiceFixture.Json("{\"reason\":\"tamper test\"}"), Ct);
                    var body = await created.Content.ReadAsStringAsync(Ct);
                    Assert.True(created.StatusCode == HttpStatusCode.Created, body);
                    id = JsonNode.Parse(body)!["backup_id"]!.GetValue<string>();
                }

                // Each backup request is in the request audit, like every operation.
                Assert.True(
                    await ServiceQueries.EventuallyAsync(async () => (await ServiceQueries.AuditEntriesAsync(op, "http.operation", Ct)).Count(e => e.GetProperty("entity_id").GetString() == "POST /v1/backups") == 3, TimeSpan.FromSeconds(30), Ct),
                    "the three backup requests are not all in the request audit");

                // Retention: three backups, two kept.
                var listed = JsonNode.Parse(await op.GetStringAsync("/v1/backups", Ct))!["backups"]!.AsArray();
                Assert.Equal(2, listed.Count);
                Assert.Equal(id, listed[0]!["backup_id"]!.GetValue<string>());
                using var anonymous = await service.CreateClient().GetAsync($"/v1/backups/{id}", Ct);
                Assert.Equal(HttpStatusCode.Unauthorized, anonymous.StatusCode);
                archive = Path.Combine(root, id + ".tar.gz");
                await File.WriteAllBytesAsync(archive, await op.GetByteArrayAsync($"/v1/backups/{id}", Ct), Ct);
            }

            var (ok, okOutput) = await RunCliAsync("backup", "verify", archive);
            Assert.True(ok == 0, okOutput);
            Assert.Contains("key from the archive", okOutput, StringComparison.Ordinal);
            var model = ReadEntries(archive).Keys.First(k => k.EndsWith("/model.onnx", StringComparison.Ordinal));

            // 1. A model file changed: named, with both hashes.
            await AssertRefusedAsync(Rewrite(archive, root, "model", (name, bytes) => name == model ? Flip(bytes) : bytes, fixManifest: false), $"{model} has SHA-256", "altered after the backup");

            // 2. The model file and its manifest entry changed together: the backup record in the signed audit log disagrees.
            await AssertRefusedAsync(Rewrite(archive, root, "model-and-manifest", (name, bytes) => name == model ? Flip(bytes) : bytes, fixManifest: true), "recorded in backup.created");

            // 3. An audit entry changed (with its manifest entry): the log no longer verifies against its signed checkpoint.
            await AssertRefusedAsync(Rewrite(archive, root, "audit", (name, bytes) => name == "audit/entries.log" ? Flip(bytes, bytes.Length / 2) : bytes, fixManifest: true), "audit log does not verify");

            // 4. A file that is not in the manifest.
            await AssertRefusedAsync(Rewrite(archive, root, "extra", (name, bytes) => bytes, fixManifest: false, extra: "registry/v9.9.9/model.onnx"), "holds 'registry/v9.9.9/model.onnx', which its manifest does not list");

            // 5. Not a backup at all.
            var garbage = Path.Combine(root, "garbage.tar.gz");
            await File.WriteAllBytesAsync(garbage, RandomNumberGenerator.GetBytes(4096), Ct);
            await AssertRefusedAsync(garbage, "not a readable har-backup");
        }
        finally
        {
            Directory.Delete(root, recursive: true);
        }

        async Task AssertRefusedAsync(string tampered, params string[] expected)
        {
            var target = Path.Combine(root, "target-" + Path.GetFileNameWithoutExtension(tampered));
            var (code, output) = await RunCliAsync("backup", "restore", tampered, "--to", target);
            Assert.True(code == 1, $"exit {code}: {output}");
            foreach (var e in expected)
            {
                Assert.Contains(e, output, StringComparison.Ordinal);
            }

            Assert.False(Directory.Exists(target), $"the refused restore left {target} behind");
        }
    }

    private static async Task<(string Current, string[] Versions)> ModelsAsync(HttpClient client)
    {
        var json = JsonNode.Parse(await client.GetStringAsync("/v1/models", Ct))!;
        return (json["current"]!.GetValue<string>(), [.. json["versions"]!.AsArray().Select(v => v!["version"]!.GetValue<string>())]);
    }

    private static string Window(string modelsDirectory)
    {
        var card = ServiceFixture.ChampionCard(modelsDirectory);
        return string.Join(",", Enumerable.Range(0, card.WindowLength * card.ChannelCount).Select(i => (i % 6 == 2 ? 9.8 : 0.1 * (i % 5)).ToString(System.Globalization.CultureInfo.InvariantCulture)));
    }

    private static byte[] Flip(byte[] bytes) => Flip(bytes, bytes.Length - 1);

    private static byte[] Flip(byte[] bytes, int at)
    {
        var copy = (byte[])bytes.Clone();
        copy[at] ^= 0x20;
        return copy;
    }

    private static Dictionary<string, byte[]> ReadEntries(string archive)
    {
        var entries = new Dictionary<string, byte[]>(StringComparer.Ordinal);
        using var gzip = new GZipStream(File.OpenRead(archive), CompressionMode.Decompress);
        using var tar = new TarReader(gzip);
        while (tar.GetNextEntry() is { } entry)
        {
            using var data = new MemoryStream();
            entry.DataStream?.CopyTo(data);
            entries[entry.Name] = data.ToArray();
        }

        return entries;
    }

    /// <summary>A copy of the archive with its files changed by <paramref name="change"/>; with <paramref name="fixManifest"/>, the manifest's hashes are updated to match (an attacker who edits both).</summary>
    private static string Rewrite(string archive, string folder, string name, Func<string, byte[], byte[]> change, bool fixManifest, string? extra = null)
    {
        var entries = ReadEntries(archive);
        var changed = entries.ToDictionary(e => e.Key, e => e.Key == "manifest.json" ? e.Value : change(e.Key, e.Value), StringComparer.Ordinal);
        if (fixManifest)
        {
            var manifest = JsonNode.Parse(changed["manifest.json"])!;
            foreach (var file in manifest["files"]!.AsArray())
            {
                var bytes = changed[file!["path"]!.GetValue<string>()];
                file["sha256"] = Convert.ToHexStringLower(SHA256.HashData(bytes));
                file["bytes"] = bytes.Length;
            }

            changed["manifest.json"] = JsonSerializer.SerializeToUtf8Bytes(manifest);
        }

        if (extra is not null)
        {
            changed[extra] = [1, 2, 3];
        }

        var path = Path.Combine(folder, $"tampered-{name}.tar.gz");
        using var gzip = new GZipStream(File.Create(path), CompressionLevel.Fastest);
        using var tar = new TarWriter(gzip, TarEntryFormat.Pax);
        foreach (var (entryName, bytes) in changed)
        {
            tar.WriteEntry(new PaxTarEntry(TarEntryType.RegularFile, entryName) { DataStream = new MemoryStream(bytes) });
        }

        return path;
    }

    private static async Task<(int ExitCode, string Output)> RunCliAsync(params string[] args)
    {
        var psi = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        psi.ArgumentList.Add(ServiceProcess.CliDll);
        foreach (var arg in args)
        {
            psi.ArgumentList.Add(arg);
        }

        using var process = Process.Start(psi)!;
        var stdout = process.StandardOutput.ReadToEndAsync(Ct);
        var stderr = process.StandardError.ReadToEndAsync(Ct);
        await process.WaitForExitAsync(Ct);
        return (process.ExitCode, await stdout + await stderr);
    }
}
