using System.Globalization;
using System.Net;
using System.Net.Http.Headers;
using System.Text.Json;
using Har.Service.Tests.Streams;
using Har.Testing;

namespace Har.Service.Tests.Endpoints;

/// <summary>
/// The service's answers against its own OpenAPI document: a realistic valid request to every operation (the flows of
/// the other tests: predictions, a stream and its labels, a registration, two rollouts rolled back with their incident,
/// audit appends, queries and proofs, backups), each answer's status declared by number, its media type declared, and
/// its body valid against the schema the document declares for that status (JSON Schema 2020-12, strict about members:
/// <see cref="OpenApiContract"/>); then the refusals a client meets (400, 401, 403, 404, 405, 409, 413, 415, 422), each
/// declared and a valid ProblemDetails. Found from outside: 26 of 28 operations declared no content for their success,
/// so a client generated from the document could read none of them.
/// </summary>
public sealed class OpenApiConformanceTests
{
    private const int MaxWindows = 4;

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task EveryOperation_AnswersAValidRequest_AndItsRefusals_AsTheDocumentDeclares()
    {
        await using var service = await ServiceProcess.StartAsync(new Dictionary<string, string>
        {
            ["Har:Service:MaxWindowsPerRequest"] = MaxWindows.ToString(CultureInfo.InvariantCulture),
        }, cancellationToken: Ct);
        using var anonymous = service.CreateClient();
        using var op = service.CreateClient(service.OperatorKey);
        using var auditor = service.CreateClient(service.AuditorKey);
        using var predictor = service.CreateClient(service.PredictorKey);
        using var labeller = service.CreateClient(service.LabellerKey);
        var contract = await OpenApiContract.LoadAsync(anonymous, Ct);
        var card = ServiceFixture.ChampionCard(service.ModelsDirectory);
        var windowValues = card.WindowLength * card.ChannelCount;

        // The check itself finds a member the schema does not name, a member of another type and a missing one.
        var predictions = contract.Operation("POST", "/v1/predict")["responses"]!["200"]!["content"]!["application/json"]!["schema"]!;
        Assert.Empty(contract.Validate(predictions, JsonDocument.Parse("{\"predictions\": []}").RootElement));
        foreach (var wrong in new[] { "{\"predictions\": [], \"extra\": 1}", "{\"predictions\": [{\"label\": 1}]}", "{}", "{\"predictions\": null}" })
        {
            Assert.NotEmpty(contract.Validate(predictions, JsonDocument.Parse(wrong).RootElement));
        }

        async Task<string> Check(string method, string template, HttpResponseMessage response, HttpStatusCode expected)
        {
            using (response)
            {
                var text = await contract.AssertConformsAsync(method, template, response, Ct);
                Assert.True(response.StatusCode == expected, $"{method} {template}: expected {(int)expected}, got {(int)response.StatusCode} {text}");
                return text;
            }
        }

        // requestMethod: another method than the operation's (405: the path's operation declares it).
        Task<string> Send(HttpClient client, string method, string template, string path, HttpContent? content, HttpStatusCode expected, string? accept = null, string? requestMethod = null)
        {
            var request = new HttpRequestMessage(new HttpMethod(requestMethod ?? method), path) { Content = content };
            if (accept is not null)
            {
                request.Headers.Accept.Add(new MediaTypeWithQualityHeaderValue(accept));
            }

            return SendAsync(client, request, method, template, expected);
        }

        async Task<string> SendAsync(HttpClient client, HttpRequestMessage request, string method, string template, HttpStatusCode expected)
        {
            using (request)
            {
                return await Check(method, template, await client.SendAsync(request, Ct), expected);
            }
        }

        // Health, metrics, the document.
        await Send(anonymous, "GET", "/health", "/health", null, HttpStatusCode.OK);
        await Send(anonymous, "GET", "/ready", "/ready", null, HttpStatusCode.OK);
        await Send(anonymous, "GET", "/metrics", "/metrics", null, HttpStatusCode.OK);
        await Send(anonymous, "GET", "/openapi/v1.json", "/openapi/v1.json", null, HttpStatusCode.OK);

        // Predictions: whole windows (JSON and float32), a stream's frames (JSON and float32), its labels.
        var window = string.Join(',', Enumerable.Range(0, windowValues).Select(i => (0.01 * (i % 13)).ToString(CultureInfo.InvariantCulture)));
        await Send(predictor, "POST", "/v1/predict", "/v1/predict", ServiceFixture.Json($"{{\"stream_id\":\"conf-1\",\"windows\":[[{window}],[{window}]]}}"), HttpStatusCode.OK);
        await Send(anonymous, "POST", "/v1/predict", "/v1/predict?stream_id=conf-anon", ServiceFixture.Bytes(Float32(DriftCapacityTests.Signal(card.ChannelCount, card.WindowLength, seed: 3)), "application/octet-stream"), HttpStatusCode.OK);
        var frames = card.Stride * MaxWindows;
        var samples = string.Join(',', DriftCapacityTests.Signal(card.ChannelCount, frames, seed: 4).Select(v => v.ToString("R", CultureInfo.InvariantCulture)));
        var appended = await Send(predictor, "POST", "/v1/streams/{streamId}/samples", "/v1/streams/conf-2/samples", ServiceFixture.Json($"{{\"samples\":[{samples}]}}"), HttpStatusCode.OK);
        Assert.Contains("\"start_frame\":", appended, StringComparison.Ordinal);
        await Send(predictor, "POST", "/v1/streams/{streamId}/samples", "/v1/streams/conf-2/samples", ServiceFixture.Bytes(Float32(DriftCapacityTests.Signal(card.ChannelCount, frames, seed: 5)), "application/octet-stream"), HttpStatusCode.OK);
        await Send(labeller, "POST", "/v1/streams/{streamId}/feedback", "/v1/streams/conf-2/feedback", ServiceFixture.Json($"{{\"labels\":[{{\"activity\":\"{card.Labels[0]}\",\"start_frame\":0,\"end_frame\":{frames}}}]}}"), HttpStatusCode.OK);
        var now = DateTimeOffset.UtcNow;
        await Send(labeller, "POST", "/v1/feedback", "/v1/feedback", ServiceFixture.Json($"{{\"labels\":[{{\"stream_id\":\"conf-1\",\"activity\":\"{card.Labels[1]}\",\"from\":\"{now.AddMinutes(-5):O}\",\"to\":\"{now.AddMinutes(1):O}\"}}]}}"), HttpStatusCode.OK);

        // The registry: the list, one version (with its card), a registration with its deployment details.
        await Send(anonymous, "GET", "/v1/models", "/v1/models?page_size=1", null, HttpStatusCode.OK);
        var detail = await Send(predictor, "GET", "/v1/models/{version}", $"/v1/models/{card.ModelVersion}", null, HttpStatusCode.OK);
        Assert.Contains("\"har.window_length\"", detail, StringComparison.Ordinal);
        var upload = OnnxModelEditor.WithKey(await File.ReadAllBytesAsync(ServiceFixture.ChampionPath(service.ModelsDirectory), Ct), "har.model_version", "9.0.0");
        await Send(op, "POST", "/v1/models", "/v1/models?approved_by=alice&run_id=run-42&target=staging", ServiceFixture.Bytes(upload, "application/octet-stream"), HttpStatusCode.Created);
        await Send(op, "GET", "/v1/models/{version}", "/v1/models/9.0.0", null, HttpStatusCode.OK);
        await Send(op, "POST", "/v1/models/{version}/retire", "/v1/models/9.0.0/retire", ServiceFixture.Json("{\"reason\":\"conformance\"}"), HttpStatusCode.OK);
        await Send(op, "POST", "/v1/models/{version}/reinstate", "/v1/models/9.0.0/reinstate", ServiceFixture.Json("{\"reason\":\"conformance\"}"), HttpStatusCode.OK);

        // Drift without a reference profile (with one: the test below).
        await Send(anonymous, "GET", "/v1/drift", "/v1/drift?device=conf-2", null, HttpStatusCode.OK);
        await Send(anonymous, "GET", "/v1/drift/alarms", "/v1/drift/alarms", null, HttpStatusCode.OK);

        // The audit log.
        var appendedEvent = await Send(op, "POST", "/v1/audit/events", "/v1/audit/events", ServiceFixture.Json("{\"event_type\":\"ops.maintenance\",\"entity_type\":\"node\",\"entity_id\":\"gpu-3\",\"severity\":\"notice\",\"action_details\":{\"ticket\":\"CHG-1234\"}}"), HttpStatusCode.Created);
        var index = JsonDocument.Parse(appendedEvent).RootElement.GetProperty("index").GetInt64();
        await Send(auditor, "GET", "/v1/audit/events", "/v1/audit/events", null, HttpStatusCode.OK);
        await Send(auditor, "GET", "/v1/audit/events", "/v1/audit/events?kind=event&min_severity=notice&page_size=2", null, HttpStatusCode.OK);
        await Send(auditor, "GET", "/v1/audit/events/{index}", $"/v1/audit/events/{index}", null, HttpStatusCode.OK);
        await Send(auditor, "GET", "/v1/audit/proof/{index}", $"/v1/audit/proof/{index}", null, HttpStatusCode.OK);
        await Send(auditor, "GET", "/v1/audit/checkpoint", "/v1/audit/checkpoint", null, HttpStatusCode.OK);

        // Backups: the summary, the archive itself, the list, a download.
        var backup = await Send(op, "POST", "/v1/backups", "/v1/backups", null, HttpStatusCode.Created);
        var backupId = JsonDocument.Parse(backup).RootElement.GetProperty("backup_id").GetString();
        await Send(op, "POST", "/v1/backups", "/v1/backups", ServiceFixture.Json("{\"reason\":\"conformance\"}"), HttpStatusCode.Created, accept: "application/gzip");
        await Send(op, "GET", "/v1/backups", "/v1/backups", null, HttpStatusCode.OK);
        await Send(op, "GET", "/v1/backups/{id}", $"/v1/backups/{backupId}", null, HttpStatusCode.OK);

        // A canary: its state, pause (the document's example body) and resume, a rollback through the action, its incident.
        var candidate = Directory.GetFiles(service.ModelsDirectory, "*.onnx").Select(f => Har.Inference.ModelCard.Load(f).ModelVersion).Where(v => v != card.ModelVersion).Order(StringComparer.Ordinal).First();
        await Send(anonymous, "GET", "/v1/rollouts/current", "/v1/rollouts/current", null, HttpStatusCode.NotFound);
        await Send(op, "POST", "/v1/rollouts", "/v1/rollouts", ServiceFixture.Json($"{{\"candidate\":\"{candidate}\",\"strategy\":\"canary\",\"reason\":\"conformance\"}}"), HttpStatusCode.Accepted);
        await ProgressingAsync(op);
        await Send(anonymous, "GET", "/v1/rollouts/current", "/v1/rollouts/current", null, HttpStatusCode.OK);
        await Send(op, "POST", "/v1/rollouts/current/{action}", "/v1/rollouts/current/pause", ServiceFixture.Json("{\"reason\": \"…\", \"expected_phase\": \"Progressing\"}"), HttpStatusCode.OK);
        await Send(op, "POST", "/v1/rollouts/current/{action}", "/v1/rollouts/current/resume", null, HttpStatusCode.OK);
        var rolledBack = await Send(op, "POST", "/v1/rollouts/current/{action}", "/v1/rollouts/current/rollback", ServiceFixture.Json("{\"reason\":\"conformance\",\"summary\":\"first\"}"), HttpStatusCode.OK);
        var incident = JsonDocument.Parse(rolledBack).RootElement.GetProperty("incident_id").GetString();
        await Send(anonymous, "GET", "/v1/incidents/{id}", $"/v1/incidents/{incident}", null, HttpStatusCode.OK);
        await Send(op, "PUT", "/v1/incidents/{id}", $"/v1/incidents/{incident}", ServiceFixture.Json("{\"cause\":\"label order\",\"actions\":\"retrain\"}"), HttpStatusCode.OK);
        await Send(op, "GET", "/v1/incidents/{id}", $"/v1/incidents/{incident}", null, HttpStatusCode.OK);

        // A second canary, rolled back through POST /v1/rollouts/rollback; a start while it runs is a conflict.
        await Send(op, "POST", "/v1/rollouts", "/v1/rollouts", ServiceFixture.Json($"{{\"candidate\":\"{candidate}\"}}"), HttpStatusCode.Accepted);
        await ProgressingAsync(op);
        await Send(op, "POST", "/v1/rollouts", "/v1/rollouts", ServiceFixture.Json($"{{\"candidate\":\"{candidate}\"}}"), HttpStatusCode.Conflict);
        await Send(op, "POST", "/v1/rollouts/rollback", "/v1/rollouts/rollback", ServiceFixture.Json("{\"reason\":\"conformance\",\"cause\":\"second\"}"), HttpStatusCode.OK);
        await Send(anonymous, "GET", "/v1/rollouts", "/v1/rollouts", null, HttpStatusCode.OK);
        await Send(op, "GET", "/v1/rollouts", "/v1/rollouts?outcome=rolled_back&page_size=1", null, HttpStatusCode.OK);

        var uncovered = contract.Operations.Select(o => $"{o.Method} {o.Path}").Where(o => !contract.Covered.Contains(o)).ToList();
        Assert.True(uncovered.Count == 0, "operations no valid request was checked for: " + string.Join(", ", uncovered));

        // The refusals a client meets: each status declared by the operation, each body a ProblemDetails.
        await Send(anonymous, "GET", "/v1/models", "/v1/models?limit=5", null, HttpStatusCode.BadRequest);
        await Send(op, "POST", "/v1/rollouts", "/v1/rollouts", ServiceFixture.Json("{\"candidate\":\"1.1.0\",\"strategy\":\"canary\",\"extra\":1}"), HttpStatusCode.BadRequest);
        await Send(anonymous, "GET", "/v1/audit/events", "/v1/audit/events", null, HttpStatusCode.Unauthorized);
        using (var badKey = service.CreateClient("not-a-key"))
        {
            await Send(badKey, "GET", "/health", "/health", null, HttpStatusCode.Unauthorized);
            await Send(badKey, "GET", "/metrics", "/metrics", null, HttpStatusCode.Unauthorized);
            await Send(badKey, "POST", "/v1/predict", "/v1/predict", ServiceFixture.Json($"{{\"windows\":[[{window}]]}}"), HttpStatusCode.Unauthorized);
        }

        await Send(predictor, "POST", "/v1/backups", "/v1/backups", null, HttpStatusCode.Forbidden);
        await Send(predictor, "POST", "/v1/feedback", "/v1/feedback", ServiceFixture.Json("{\"labels\":[]}"), HttpStatusCode.Forbidden);
        await Send(anonymous, "GET", "/v1/models/{version}", "/v1/models/9.9.9", null, HttpStatusCode.NotFound);
        await Send(op, "POST", "/v1/models/{version}/retire", "/v1/models/9.9.9/retire", ServiceFixture.Json("{\"reason\":\"x\"}"), HttpStatusCode.NotFound);
        await Send(op, "POST", "/v1/models/{version}/reinstate", "/v1/models/9.9.9/reinstate", ServiceFixture.Json("{}"), HttpStatusCode.BadRequest);
        await Send(op, "GET", "/v1/backups/{id}", "/v1/backups/nope", null, HttpStatusCode.NotFound);
        await Send(auditor, "GET", "/v1/audit/events/{index}", "/v1/audit/events/999999", null, HttpStatusCode.NotFound);
        await Send(anonymous, "GET", "/v1/incidents/{id}", "/v1/incidents/incident-nope", null, HttpStatusCode.NotFound);
        await Send(op, "PUT", "/v1/incidents/{id}", "/v1/incidents/incident-nope", ServiceFixture.Json("{\"cause\":\"x\"}"), HttpStatusCode.NotFound);
        await Send(op, "POST", "/v1/rollouts/current/{action}", "/v1/rollouts/current/pause", null, HttpStatusCode.Conflict);
        await Send(anonymous, "GET", "/metrics", "/metrics", null, HttpStatusCode.MethodNotAllowed, requestMethod: "POST");
        await Send(anonymous, "GET", "/openapi/v1.json", "/openapi/v1.json", null, HttpStatusCode.MethodNotAllowed, requestMethod: "DELETE");
        await Send(anonymous, "POST", "/v1/predict", "/v1/predict", ServiceFixture.Json($"{{\"windows\":[{string.Join(',', Enumerable.Repeat($"[{window}]", MaxWindows + 1))}]}}"), HttpStatusCode.RequestEntityTooLarge);
        await Send(labeller, "POST", "/v1/feedback", "/v1/feedback", ServiceFixture.Bytes("{}"u8.ToArray(), "text/plain"), HttpStatusCode.UnsupportedMediaType);
        await Send(op, "POST", "/v1/audit/events", "/v1/audit/events", ServiceFixture.Bytes("{}"u8.ToArray(), "application/jsonx"), HttpStatusCode.UnsupportedMediaType);
        await Send(op, "POST", "/v1/models", "/v1/models", ServiceFixture.Bytes("not an onnx model"u8.ToArray(), "application/octet-stream"), HttpStatusCode.UnprocessableEntity);
    }

    /// <summary>The drift answers with a reference profile: a device's report (channels, findings, alarm) and the pooled one.</summary>
    [Fact]
    public async Task Drift_WithAReferenceProfile_AnswersAsTheDocumentDeclares()
    {
        var work = Directory.CreateTempSubdirectory("har-openapi-drift-");
        try
        {
            await using var service = await DriftCapacityTests.StartAsync(work);
            using var client = service.CreateClient();
            var contract = await OpenApiContract.LoadAsync(client, Ct);
            var card = DriftCapacityTests.Card;
            using (var response = await client.PostAsync("/v1/streams/conf-drift/samples", ServiceFixture.Bytes(Float32(DriftCapacityTests.Signal(card.ChannelCount, 1000, seed: 7)), "application/octet-stream"), Ct))
            {
                await contract.AssertConformsAsync("POST", "/v1/streams/{streamId}/samples", response, Ct);
                Assert.Equal(HttpStatusCode.OK, response.StatusCode);
            }

            using var deadline = CancellationTokenSource.CreateLinkedTokenSource(Ct);
            deadline.CancelAfter(TimeSpan.FromMinutes(2)); // against a hang
            while (true)
            {
                using var response = await client.GetAsync("/v1/drift?device=conf-drift", deadline.Token);
                var text = await contract.AssertConformsAsync("GET", "/v1/drift", response, Ct);
                using var drift = JsonDocument.Parse(text);
                Assert.True(drift.RootElement.GetProperty("enabled").GetBoolean(), text);
                if (drift.RootElement.GetProperty("scored").GetBoolean())
                {
                    Assert.Equal(JsonValueKind.Object, drift.RootElement.GetProperty("report").ValueKind);
                    break;
                }

                await Task.Delay(200, deadline.Token);
            }

            foreach (var path in new[] { "/v1/drift", "/v1/drift/alarms", "/v1/drift/alarms?cause=Units" })
            {
                using var response = await client.GetAsync(path, Ct);
                await contract.AssertConformsAsync("GET", path.Split('?')[0], response, Ct);
                Assert.Equal(HttpStatusCode.OK, response.StatusCode);
            }
        }
        finally
        {
            work.Delete(recursive: true);
        }
    }

    /// <summary>Waits (bounded) until the current rollout is Progressing: a command before that is refused as too early.</summary>
    private static async Task ProgressingAsync(HttpClient client)
    {
        for (var i = 0; i < 600; i++)
        {
            using var status = JsonDocument.Parse(await client.GetStringAsync("/v1/rollouts/current", Ct));
            var phase = status.RootElement.GetProperty("phase").GetString();
            if (phase == "Progressing")
            {
                return;
            }

            Assert.True(phase == "Pending", $"the rollout is {phase}, not on its way to Progressing: {status.RootElement}");
            await Task.Delay(100, Ct);
        }

        Assert.Fail("the rollout did not reach Progressing within 60 s");
    }

    private static byte[] Float32(float[] values)
    {
        var bytes = new byte[values.Length * sizeof(float)];
        Buffer.BlockCopy(values, 0, bytes, 0, bytes.Length);
        return bytes;
    }
}
