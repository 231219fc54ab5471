using System.Globalization;
using System.Net;
using System.Text.Json;
using Har.Testing;

namespace Har.Service.Tests.Endpoints;

/// <summary>
/// Issue 14 on the real service process: a rollback to a chosen older version over HTTP, its six steps in the
/// audit log, and the incident report retrievable by id and completed afterwards.
/// </summary>
public sealed class RollbackIncidentTests
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task RollbackToOlderVersion_SixStepsAndIncidentReportOverHttp()
    {
        var models = Directory.CreateTempSubdirectory("har-rollback-models-").FullName;
        try
        {
            File.Copy(Path.Combine(ServiceProcess.FixturesDirectory, "tiny-probs-1.0.0.onnx"), Path.Combine(models, "tiny-probs-1.0.0.onnx"));
            var logits = await File.ReadAllBytesAsync(Path.Combine(ServiceProcess.FixturesDirectory, "tiny-logits-1.1.0.onnx"), Ct);
            await File.WriteAllBytesAsync(Path.Combine(models, "tiny-logits-1.1.0.onnx"), logits, Ct);
            await File.WriteAllBytesAsync(Path.Combine(models, "tiny-logits-1.2.0.onnx"), OnnxModelEditor.WithKey(logits, "har.model_version", "1.2.0"), Ct);

            await using var service = await ServiceProcess.StartAsync(new Dictionary<string, string>
            {
                ["Har:ModelsDirectory"] = models,
                // The verification interval (step 5) is one analysis interval: long enough for the PUT and the
                // prediction below to land in it on a loaded machine.
                ["Har:Service:RolloutAnalysisInterval"] = "00:00:08",
            }, cancellationToken: Ct);
            using var op = service.CreateClient(service.OperatorKey);

            (await PostOkAsync(op, "/v1/rollouts", "{\"candidate\":\"1.1.0\",\"strategy\":\"recreate\",\"reason\":\"ship 1.1.0\"}", HttpStatusCode.Accepted)).Dispose();
            Assert.Equal("1.1.0", await CurrentAsync(op));
            (await PostOkAsync(op, "/v1/rollouts", "{\"candidate\":\"1.2.0\",\"strategy\":\"canary\",\"reason\":\"ship 1.2.0\"}", HttpStatusCode.Accepted)).Dispose();

            // A target that is not earlier than the candidate is refused (409) and changes nothing.
            using (var refused = await op.PostAsync("/v1/rollouts/rollback", ServiceFixture.Json("{\"to\":\"1.2.0\"}"), Ct))
            {
                Assert.Equal(HttpStatusCode.Conflict, refused.StatusCode);
                Assert.Contains("not earlier than the candidate", await refused.Content.ReadAsStringAsync(Ct), StringComparison.Ordinal);
            }

            using var rollback = await PostOkAsync(op, "/v1/rollouts/rollback", "{\"to\":\"1.0.0\",\"reason\":\"1.1.0 and 1.2.0 share the bug\",\"summary\":\"stairs misclassified\"}", HttpStatusCode.OK);
            var incident = rollback.RootElement.GetProperty("incident_id").GetString()!;
            Assert.Equal(("RolledBack", "1.0.0"), (rollback.RootElement.GetProperty("phase").GetString(), rollback.RootElement.GetProperty("current_version").GetString()));
            Assert.Equal("1.0.0", await CurrentAsync(op));

            // Completed afterwards (PUT), then windows served through the restored version during the verification interval.
            using (var put = await op.PutAsync($"/v1/incidents/{incident}", ServiceFixture.Json("{\"cause\":\"label order changed in training\",\"actions\":\"retrain\"}"), Ct))
            {
                Assert.True(put.StatusCode == HttpStatusCode.OK, $"{(int)put.StatusCode} {await put.Content.ReadAsStringAsync(Ct)}");
            }

            var window = string.Join(",", Enumerable.Range(0, 200 * 6).Select(i => (0.01 * (i % 7)).ToString(CultureInfo.InvariantCulture)));
            using (var predict = await op.PostAsync("/v1/predict", ServiceFixture.Json($"{{\"stream_id\":\"d1\",\"windows\":[[{window}]]}}"), Ct))
            {
                var body = await predict.Content.ReadAsStringAsync(Ct);
                Assert.True(predict.StatusCode == HttpStatusCode.OK, body);
                Assert.Contains("\"1.0.0\"", body, StringComparison.Ordinal);
            }

            // Step 5 ends after the interval (8 s); generous bounded polling on a loaded machine.
            JsonElement report = default;
            for (var i = 0; i < 240; i++)
            {
                using var json = JsonDocument.Parse(await op.GetStringAsync($"/v1/incidents/{incident}", Ct));
                var state = json.RootElement.GetProperty("state").GetString();
                if (json.RootElement.GetProperty("steps").GetArrayLength() < 6)
                {
                    // The operator's report (the PUT above) is there, but the incident is not logged before step 6.
                    Assert.Equal("verifying", state);
                    Assert.True(json.RootElement.GetProperty("revisions").GetInt32() >= 1);
                }
                else if (state == "logged")
                {
                    report = json.RootElement.Clone();
                    break;
                }

                await Task.Delay(250, Ct);
            }

            Assert.Equal(JsonValueKind.Object, report.ValueKind);
            Assert.Equal(["detect", "identify", "verify", "execute", "verify_success", "log"], report.GetProperty("steps").EnumerateArray().Select(s => s.GetProperty("name").GetString()));
            var latest = report.GetProperty("report");
            Assert.Equal("1.0.0", latest.GetProperty("to").GetString());
            Assert.Equal("1.2.0", latest.GetProperty("from").GetString());
            Assert.Equal("stairs misclassified", latest.GetProperty("summary").GetString());
            Assert.Equal("label order changed in training", latest.GetProperty("cause").GetString());
            Assert.Equal("retrain", latest.GetProperty("actions").GetString());
            Assert.Equal("passed", latest.GetProperty("verification").GetString());
            Assert.True(latest.GetProperty("time_to_restore_seconds").GetDouble() >= 0);

            using var unknown = await op.GetAsync("/v1/incidents/incident-nope", Ct);
            Assert.Equal(HttpStatusCode.NotFound, unknown.StatusCode);
        }
        finally
        {
            Directory.Delete(models, recursive: true);
        }
    }

    private static async Task<JsonDocument> PostOkAsync(HttpClient client, string path, string body, HttpStatusCode expected)
    {
        using var response = await client.PostAsync(path, ServiceFixture.Json(body), Ct);
        var text = await response.Content.ReadAsStringAsync(Ct);
        Assert.True(response.StatusCode == expected, $"POST {path}: {(int)response.StatusCode} {text}");
        return JsonDocument.Parse(text);
    }

    private static async Task<string?> CurrentAsync(HttpClient client)
    {
        using var json = JsonDocument.Parse(await client.GetStringAsync("/v1/models", Ct));
        return json.RootElement.GetProperty("current").GetString();
    }
}
