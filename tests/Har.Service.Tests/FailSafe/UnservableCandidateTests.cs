using System.Net;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;
using Har.Testing;

namespace Har.Service.Tests.FailSafe;

/// <summary>
/// Issue 17 point 1 against the real service process: a registered model with a self-consistent card that
/// asks for a 128-sample window never takes the service down — a rollout to it is refused before any step,
/// and a restart over a persisted rollout to it (the state an older build left behind, which crash-looped
/// every restart) comes up healthy with the rollout Failed and the champion serving.
/// </summary>
public sealed class UnservableCandidateTests : IDisposable
{
    private readonly string _data = Directory.CreateTempSubdirectory("har-failsafe-").FullName;

    public void Dispose()
    {
        try
        {
            Directory.Delete(_data, recursive: true);
        }
        catch (IOException)
        {
        }
    }

    [Fact]
    public async Task Rollout_To128WindowCandidate_RefusedAndTheServiceKeepsServing()
    {
        await using var service = await ServiceProcess.StartAsync(Settings(), cancellationToken: TestContext.Current.CancellationToken);
        using var op = service.CreateClient(service.OperatorKey);

        using (var upload = new ByteArrayContent(Make128WindowModel(service.ModelsDirectory)))
        {
            upload.Headers.ContentType = new MediaTypeHeaderValue("application/octet-stream");
            using var registered = await op.PostAsync("/v1/models", upload, TestContext.Current.CancellationToken);
            Assert.Equal(HttpStatusCode.Created, registered.StatusCode);
        }

        using var start = await op.PostAsync("/v1/rollouts", Json("{\"candidate\": \"1.2.0\", \"strategy\": \"canary\", \"reason\": \"fail-safe test\"}"), TestContext.Current.CancellationToken);
        var problem = await start.Content.ReadAsStringAsync(TestContext.Current.CancellationToken);
        Assert.Equal(HttpStatusCode.Conflict, start.StatusCode);
        Assert.Contains("windows of 128 frames", problem, StringComparison.Ordinal);

        using var current = await op.GetAsync("/v1/rollouts/current", TestContext.Current.CancellationToken);
        Assert.Equal(HttpStatusCode.NotFound, current.StatusCode);
        await AssertServingChampionAsync(service);
        Assert.False(service.HasExited);
    }

    [Fact]
    public async Task Restart_OverPersistedRolloutTo128WindowCandidate_ComesUpHealthyWithTheRolloutFailed()
    {
        // First start: seed the registry and register the 128-window candidate.
        await using (var first = await ServiceProcess.StartAsync(Settings(), cancellationToken: TestContext.Current.CancellationToken))
        {
            using var op = first.CreateClient(first.OperatorKey);
            using var upload = new ByteArrayContent(Make128WindowModel(first.ModelsDirectory));
            upload.Headers.ContentType = new MediaTypeHeaderValue("application/octet-stream");
            using var registered = await op.PostAsync("/v1/models", upload, TestContext.Current.CancellationToken);
            Assert.Equal(HttpStatusCode.Created, registered.StatusCode);
        }

        // The state an older build persisted: a canary at 10 % to the 128-window candidate.
        var state = Path.Combine(_data, "registry", ".rollout", "rollout.json");
        Directory.CreateDirectory(Path.GetDirectoryName(state)!);
        File.WriteAllText(state, """
            {
              "Schema": 1, "RolloutId": "rollout-128", "Strategy": "canary", "Champion": "1.0.0", "Candidate": "1.2.0",
              "Phase": "Progressing",
              "Steps": [
                { "Kind": "SetWeight", "Percent": 10, "IntervalTicks": 0, "RequiredPasses": 0, "MirrorToStable": false },
                { "Kind": "Analyze", "Percent": 0, "IntervalTicks": 600000000, "RequiredPasses": 1, "MirrorToStable": false }
              ],
              "StepIndex": 1, "CandidateBuckets": 1000, "ShadowBuckets": 0, "Mirror": false, "Salt": 12345, "Revision": 3,
              "StartedBy": "alice", "StartedAt": "2026-01-15T10:30:00+00:00", "UpdatedAt": "2026-01-15T10:31:00+00:00",
              "StepStartedAt": "2026-01-15T10:31:00+00:00", "Message": "applied step 0", "Sequence": -1, "Outbox": []
            }
            """);

        await using var second = await ServiceProcess.StartAsync(Settings(), cancellationToken: TestContext.Current.CancellationToken);
        using var client = second.CreateClient(second.OperatorKey);
        using var current = await client.GetAsync("/v1/rollouts/current", TestContext.Current.CancellationToken);
        var body = await current.Content.ReadAsStringAsync(TestContext.Current.CancellationToken);
        Assert.Equal(HttpStatusCode.OK, current.StatusCode);
        using var json = JsonDocument.Parse(body);
        Assert.Equal("Failed", json.RootElement.GetProperty("phase").GetString());
        Assert.Contains("windows of 128 frames", json.RootElement.GetProperty("message").GetString(), StringComparison.Ordinal);
        Assert.Equal(0, json.RootElement.GetProperty("candidate_percent").GetDouble());
        await AssertServingChampionAsync(second);

        // The reason is in the audit trail.
        using var auditor = second.CreateClient(second.AuditorKey);
        using var events = await auditor.GetAsync("/v1/audit/events?entity_id=rollout-128", TestContext.Current.CancellationToken);
        Assert.Contains("128", await events.Content.ReadAsStringAsync(TestContext.Current.CancellationToken), StringComparison.Ordinal);
    }

    private Dictionary<string, string> Settings() => new() { ["Har:Service:DataDirectory"] = _data };

    private static byte[] Make128WindowModel(string modelsDirectory) => OnnxModelEditor.Rewrite(
        File.ReadAllBytes(Directory.GetFiles(modelsDirectory, "*1.1.0.onnx").Single()),
        new Dictionary<string, string> { ["har.window_length"] = "128", ["har.stride"] = "64", ["har.model_version"] = "1.2.0" },
        inputTimeDimension: 128);

    private static async Task AssertServingChampionAsync(ServiceProcess service)
    {
        using var client = service.CreateClient(service.OperatorKey);
        using var ready = await client.GetAsync("/ready", TestContext.Current.CancellationToken);
        Assert.Equal(HttpStatusCode.OK, ready.StatusCode);
        var window = new byte[200 * 6 * sizeof(float)];
        using var content = new ByteArrayContent(window);
        content.Headers.ContentType = new MediaTypeHeaderValue("application/octet-stream");
        using var request = new HttpRequestMessage(HttpMethod.Post, "/v1/predict") { Content = content };
        request.Headers.Add("X-Stream-Id", "device-1");
        using var predicted = await client.SendAsync(request, TestContext.Current.CancellationToken);
        var answer = await predicted.Content.ReadAsStringAsync(TestContext.Current.CancellationToken);
        Assert.Equal(HttpStatusCode.OK, predicted.StatusCode);
        Assert.Contains("\"model_version\":\"1.0.0\"", answer, StringComparison.Ordinal);
    }

    private static StringContent Json(string body) => new(body, Encoding.UTF8, "application/json");
}
