using System.Diagnostics;
using System.Net;
using System.Net.Http.Headers;
using System.Security.Cryptography;
using System.Text.Json;
using System.Text.Json.Nodes;
using Har.Testing;

namespace Har.Service.Tests.Registry;

/// <summary>
/// Issue 17 points 4, 7, 9, 10 and 11 against the real service: a swapped model is neither verified nor
/// served, operator mistakes get 4xx problem details, a registration whose audit record cannot be written
/// changes nothing, and replicas that start together on one volume all come up.
/// </summary>
public sealed class RegistryServiceTests : IDisposable
{
    private static readonly JsonSerializerOptions Indented = new() { WriteIndented = true };
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private readonly string _scratch = Directory.CreateTempSubdirectory("har-registry-e2e-").FullName;

    public void Dispose()
    {
        try
        {
            Directory.Delete(_scratch, recursive: true);
        }
        catch (IOException)
        {
        }
    }

    [Fact]
    public async Task SwappedModelWithRewrittenRecordAndConfig_VerifyFailsAndItIsNeverServed()
    {
        var data = Path.Combine(_scratch, "data");
        var models = ReplicaProcess.ModelsDirectory(_scratch);
        var registry = Path.Combine(data, "registry");
        var audit = Path.Combine(data, "audit");
        await using (var service = ReplicaProcess.Start(data, audit, models))
        {
            Assert.True(await service.WaitReadyAsync(TimeSpan.FromSeconds(120)), service.Output);

            // The attack: another model under v1.1.0, with config.json and deployment_record.json rewritten to match it.
            SwapConsistently(Path.Combine(registry, "v1.1.0"), ImpostorOf(ChampionFile(models), "1.1.0"));

            using var client = service.CreateClient();
            using var start = await client.PostAsync(new Uri("/v1/rollouts", UriKind.Relative), Json("{\"candidate\": \"1.1.0\", \"strategy\": \"canary\", \"reason\": \"swap\"}"), Ct);
            var body = await start.Content.ReadAsStringAsync(Ct);
            Assert.True((int)start.StatusCode < 500, body);
            await AssertNotServedAsync(client, service);
        }

        // The operator's check, with the service stopped (the log has one owner at a time).
        var verify = await RunCliAsync("models", "verify", "--registry", registry, "--audit", audit);
        Assert.Equal(1, verify.ExitCode);
        Assert.Contains("ok    1.0.0", verify.Output, StringComparison.Ordinal);
        Assert.Contains("FAIL  1.1.0", verify.Output, StringComparison.Ordinal);
        Assert.Contains("the audit log registered", verify.Output, StringComparison.Ordinal);

        // A restart over the tampered registry comes up on the champion and still refuses the impostor.
        await using (var restarted = ReplicaProcess.Start(data, audit, models))
        {
            Assert.True(await restarted.WaitReadyAsync(TimeSpan.FromSeconds(120)), restarted.Output);
            using var client = restarted.CreateClient();
            using var start = await client.PostAsync(new Uri("/v1/rollouts", UriKind.Relative), Json("{\"candidate\": \"1.1.0\", \"strategy\": \"recreate\", \"reason\": \"again\"}"), Ct);
            Assert.True((int)start.StatusCode < 500, await start.Content.ReadAsStringAsync(Ct));
            await AssertNotServedAsync(client, restarted);
        }
    }

    [Fact]
    public async Task OperatorMistakes_ProblemDetailsWith4xxAndNoInternals()
    {
        var data = Path.Combine(_scratch, "data");
        var models = ReplicaProcess.ModelsDirectory(_scratch);
        await using var service = ReplicaProcess.Start(data, Path.Combine(data, "audit"), models);
        Assert.True(await service.WaitReadyAsync(TimeSpan.FromSeconds(120)), service.Output);
        using var client = service.CreateClient();
        var champion = await File.ReadAllBytesAsync(ChampionFile(models), Ct);

        // Duplicate version: 409.
        var duplicate = await UploadAsync(client, champion);
        AssertProblem(duplicate, HttpStatusCode.Conflict, "already registered", data);

        // Malformed training_data: 422 naming the member.
        var badTraining = OnnxModelEditor.WithKey(OnnxModelEditor.WithKey(champion, "har.model_version", "3.0.0"), "har.training_data", "{\"windows\": {\"train\": \"lots\"}}");
        AssertProblem(await UploadAsync(client, badTraining), HttpStatusCode.UnprocessableEntity, "windows.train", data);

        // A card with 10,000 metadata keys: 422 with the limit, refused before anything is written.
        var card = OnnxModelEditor.ReadCard(champion);
        card["har.model_version"] = "3.0.1";
        for (var i = 0; i < 10_000; i++)
        {
            card[$"user.key{i}"] = "v";
        }

        var huge = await UploadAsync(client, OnnxModelEditor.WithCard(champion, card));
        AssertProblem(huge, HttpStatusCode.UnprocessableEntity, "at most 64", data);

        // Not an ONNX file at all: 422 naming the upload, not a path.
        AssertProblem(await UploadAsync(client, [0x08, 0x01, 0x12]), HttpStatusCode.UnprocessableEntity, "upload.onnx", data);

        // Nothing at all (curl with a misspelt file name sends an empty body): 400 saying so, not "upload.onnx" holds no graph.
        AssertProblem(await UploadAsync(client, []), HttpStatusCode.BadRequest, "The body is empty (0 bytes)", data);

        Assert.False(Directory.Exists(Path.Combine(data, "registry", "v3.0.0")));
        Assert.False(Directory.Exists(Path.Combine(data, "registry", "v3.0.1")));

        // Reads are served from the cache: the verification time does not move between reads.
        var first = await ModelAsync(client, "1.0.0");
        var second = await ModelAsync(client, "1.0.0");
        Assert.True(first["verified"]!.GetValue<bool>());
        Assert.Equal(first["verified_at"]!.GetValue<DateTimeOffset>(), second["verified_at"]!.GetValue<DateTimeOffset>());
    }

    [Fact]
    public async Task Register_AuditLogCannotWrite_503AndNoVersionFolder()
    {
        var data = Path.Combine(_scratch, "data");
        var audit = Path.Combine(data, "audit");
        var models = ReplicaProcess.ModelsDirectory(_scratch);
        await using var service = ReplicaProcess.Start(data, audit, models, ignoreFileSizeSignal: true);
        Assert.True(await service.WaitReadyAsync(TimeSpan.FromSeconds(120)), service.Output);
        using var client = service.CreateClient();

        // A small new version (a few KB): its own files fit under the limit below, so only the audit log's write fails,
        // exactly as a full audit disk would make it fail.
        var upload = await File.ReadAllBytesAsync(Path.Combine(ServiceProcess.FixturesDirectory, "tiny-huge-logits-1.2.0.onnx"), Ct);
        var padding = new JsonObject
        {
            ["event_type"] = "test.padding",
            ["entity_type"] = "test",
            ["entity_id"] = "registry-probe",
            ["severity"] = "info",
            ["action_details"] = new JsonObject { ["note"] = new string('x', 16 * 1024) },
        };
        using (var padded = await client.PostAsync(new Uri("/v1/audit/events", UriKind.Relative), Json(padding.ToJsonString()), Ct))
        {
            Assert.True(padded.StatusCode == HttpStatusCode.Created, await padded.Content.ReadAsStringAsync(Ct));
        }

        var segment = new FileInfo(Path.Combine(audit, "entries.log"));
        Assert.True(segment.Length > upload.Length + 4096, $"the audit segment ({segment.Length} bytes) must be larger than the upload's files for this probe");
        await service.LimitFileSizeAsync(segment.Length);

        var response = await UploadAsync(client, upload);
        AssertProblem(response, HttpStatusCode.ServiceUnavailable, "audit record could not be written", data);
        Assert.False(Directory.Exists(Path.Combine(data, "registry", "v1.2.0")));
        Assert.Empty(Directory.GetDirectories(Path.Combine(data, "registry"), ".staging-*"));
        Assert.False(service.HasExited, service.Output);

        // Disk writable again: the log recovers by itself and the same registration goes through, without a restart.
        await service.LimitFileSizeAsync(null);
        var clock = Stopwatch.StartNew();
        var retry = await UploadAsync(client, upload);
        while (retry.Status == HttpStatusCode.ServiceUnavailable && clock.Elapsed < TimeSpan.FromSeconds(90))
        {
            await Task.Delay(500, Ct);
            retry = await UploadAsync(client, upload);
        }

        Assert.True(retry.Status == HttpStatusCode.Created, $"{(int)retry.Status}: {retry.Body}");
        Assert.True((await ModelAsync(client, "1.2.0"))["verified"]!.GetValue<bool>());
    }

    [Fact]
    public async Task ThreeReplicasStartedTogetherOnAnEmptyVolume_AllServeTheSameVerifiedRegistry()
    {
        var data = Path.Combine(_scratch, "data");
        var models = ReplicaProcess.ModelsDirectory(_scratch);
        var replicas = Enumerable.Range(0, 3).Select(i => ReplicaProcess.Start(data, Path.Combine(data, "audit", $"replica-{i}"), models)).ToArray();
        try
        {
            var ready = await Task.WhenAll(replicas.Select(r => r.WaitReadyAsync(TimeSpan.FromSeconds(180))));
            for (var i = 0; i < replicas.Length; i++)
            {
                Assert.True(ready[i], $"replica {i} exited before it was ready:\n{replicas[i].Output}");
            }

            Assert.Equal(["v1.0.0", "v1.1.0"], Directory.GetDirectories(Path.Combine(data, "registry"), "v*").Select(Path.GetFileName).Order(StringComparer.Ordinal));
            Assert.Empty(Directory.GetDirectories(Path.Combine(data, "registry"), ".staging-*"));
            foreach (var replica in replicas)
            {
                using var client = replica.CreateClient();
                var list = JsonNode.Parse(await client.GetStringAsync(new Uri("/v1/models", UriKind.Relative), Ct))!;
                Assert.Equal("1.0.0", list["current"]!.GetValue<string>());
                foreach (var version in new[] { "1.0.0", "1.1.0" })
                {
                    var model = await ModelAsync(client, version);
                    Assert.True(model["verified"]!.GetValue<bool>(), model.ToJsonString());
                }
            }
        }
        finally
        {
            foreach (var replica in replicas)
            {
                await replica.DisposeAsync();
            }
        }
    }

    private static async Task AssertNotServedAsync(HttpClient client, ReplicaProcess service)
    {
        var list = JsonNode.Parse(await client.GetStringAsync(new Uri("/v1/models", UriKind.Relative), Ct))!;
        Assert.Equal("1.0.0", list["current"]!.GetValue<string>());
        var model = await ModelAsync(client, "1.1.0");
        Assert.False(model["verified"]!.GetValue<bool>(), model.ToJsonString());
        using var rollout = await client.GetAsync(new Uri("/v1/rollouts/current", UriKind.Relative), Ct);
        if (rollout.StatusCode == HttpStatusCode.OK)
        {
            var status = JsonNode.Parse(await rollout.Content.ReadAsStringAsync(Ct))!;
            Assert.NotEqual("Succeeded", status["phase"]!.GetValue<string>());
            Assert.Equal("1.0.0", status["current_version"]!.GetValue<string>());
        }

        Assert.False(service.HasExited, service.Output);
    }

    private static async Task<JsonNode> ModelAsync(HttpClient client, string version)
    {
        using var response = await client.GetAsync(new Uri($"/v1/models/{version}", UriKind.Relative), Ct);
        var text = await response.Content.ReadAsStringAsync(Ct);
        Assert.True(response.StatusCode == HttpStatusCode.OK, text);
        return JsonNode.Parse(text)!;
    }

    private static async Task<(HttpStatusCode Status, string? MediaType, string Body)> UploadAsync(HttpClient client, byte[] model)
    {
        using var content = new ByteArrayContent(model);
        content.Headers.ContentType = new MediaTypeHeaderValue("application/octet-stream");
        using var response = await client.PostAsync(new Uri("/v1/models", UriKind.Relative), content, Ct);
        return (response.StatusCode, response.Content.Headers.ContentType?.MediaType, await response.Content.ReadAsStringAsync(Ct));
    }

    private static void AssertProblem((HttpStatusCode Status, string? MediaType, string Body) response, HttpStatusCode expected, string detail, string dataDirectory)
    {
        Assert.True(response.Status == expected, $"expected {(int)expected}, got {(int)response.Status}: {response.Body}");
        Assert.Equal("application/problem+json", response.MediaType);
        var problem = JsonNode.Parse(response.Body)!;
        Assert.Equal((int)expected, problem["status"]!.GetValue<int>());
        Assert.Contains(detail, problem["detail"]!.GetValue<string>(), StringComparison.Ordinal);
        Assert.DoesNotContain("   at ", response.Body, StringComparison.Ordinal);
        Assert.DoesNotContain(dataDirectory, response.Body, StringComparison.Ordinal);
        Assert.DoesNotContain(Path.GetTempPath(), response.Body, StringComparison.Ordinal);
    }

    private static string ChampionFile(string models) => ServiceFixture.ChampionPath(models);

    private static byte[] ImpostorOf(string championFile, string version) =>
        OnnxModelEditor.WithKey(File.ReadAllBytes(championFile), "har.model_version", version);

    private static void SwapConsistently(string folder, byte[] replacement)
    {
        File.WriteAllBytes(Path.Combine(folder, "model.onnx"), replacement);
        var card = OnnxModelEditor.ReadCard(replacement);
        var config = new JsonObject();
        foreach (var key in card.Keys.Order(StringComparer.Ordinal))
        {
            config[key] = card[key];
        }

        File.WriteAllText(Path.Combine(folder, "config.json"), config.ToJsonString(Indented) + "\n");
        var recordPath = Path.Combine(folder, "deployment_record.json");
        var record = JsonNode.Parse(File.ReadAllText(recordPath))!;
        record["model"]!["sha256"] = Convert.ToHexStringLower(SHA256.HashData(replacement));
        File.WriteAllText(recordPath, record.ToJsonString(Indented) + "\n");
    }

    private static StringContent Json(string json) => new(json, System.Text.Encoding.UTF8, "application/json");

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
