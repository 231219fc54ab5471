using System.Net;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;

namespace Har.Service.Tests.Endpoints;

/// <summary>
/// The service with every bundled model, as it ships: the candidate 1.2.0 reads the 200 frames before each window.
/// Without <c>Har:Service:ContextFrames</c> a rollout to it is refused before any step, naming the setting in the
/// service's terms; with the setting the rollout starts, <c>/v1/predict</c> takes windows of 400 frames (context
/// first) and refuses windows of 200, and the champion keeps answering.
/// </summary>
public sealed class ContextCandidateTests
{
    private static readonly CancellationToken Ct = TestContext.Current.CancellationToken;

    [Fact]
    public async Task WithoutContextSetting_RolloutToContextCandidate_RefusedNamingTheServiceSetting()
    {
        RequireContextCandidate();
        await using var service = await ServiceProcess.StartAsync(new Dictionary<string, string> { ["Har:ModelsDirectory"] = ServiceProcess.AllBundledModelsDirectory }, cancellationToken: Ct);
        using var op = service.CreateClient(service.OperatorKey);

        using var start = await op.PostAsync("/v1/rollouts", Json("{\"candidate\": \"1.2.0\", \"strategy\": \"canary\", \"reason\": \"context candidate\"}"), Ct);
        var problem = await start.Content.ReadAsStringAsync(Ct);

        Assert.Equal(HttpStatusCode.Conflict, start.StatusCode);
        Assert.Contains("reads 200 frames before each window; the pipeline keeps 0", problem, StringComparison.Ordinal);
        Assert.Contains("Har__Service__ContextFrames) = 200", problem, StringComparison.Ordinal);
        Assert.DoesNotContain("ServingOptions", problem, StringComparison.Ordinal);
        using var current = await op.GetAsync("/v1/rollouts/current", Ct);
        Assert.Equal(HttpStatusCode.NotFound, current.StatusCode);
    }

    [Fact]
    public async Task WithContextSetting_RolloutStarts_PredictTakesWindowsWithTheirContext()
    {
        RequireContextCandidate();
        await using var service = await ServiceProcess.StartAsync(
            new Dictionary<string, string> { ["Har:ModelsDirectory"] = ServiceProcess.AllBundledModelsDirectory, ["Har:Service:ContextFrames"] = "200" },
            cancellationToken: Ct);
        using var op = service.CreateClient(service.OperatorKey);

        // Windows of the labelled 200 frames alone: refused, saying what a window holds now.
        using (var shortWindow = await PredictAsync(op, new float[200 * 6]))
        {
            var problem = await shortWindow.Content.ReadAsStringAsync(Ct);
            Assert.Equal(HttpStatusCode.BadRequest, shortWindow.StatusCode);
            Assert.Contains("multiple of 2400", problem, StringComparison.Ordinal);
            Assert.Contains("200 frames of context before the 200 labelled", problem, StringComparison.Ordinal);
        }

        // Two windows of 400 frames: the champion answers each.
        var windows = new float[2 * 400 * 6];
        for (var f = 0; f < 800; f++)
        {
            windows[f * 6] = 1f; // at rest, gravity along ax
        }

        using (var answer = await PredictAsync(op, windows))
        {
            var body = await answer.Content.ReadAsStringAsync(Ct);
            Assert.True(answer.StatusCode == HttpStatusCode.OK, body);
            using var json = JsonDocument.Parse(body);
            var predictions = json.RootElement.GetProperty("predictions");
            Assert.Equal(2, predictions.GetArrayLength());
            Assert.All(predictions.EnumerateArray(), p => Assert.Equal("1.0.0", p.GetProperty("model_version").GetString()));
        }

        using var start = await op.PostAsync("/v1/rollouts", Json("{\"candidate\": \"1.2.0\", \"strategy\": \"canary\", \"reason\": \"context candidate\"}"), Ct);
        var started = await start.Content.ReadAsStringAsync(Ct);
        Assert.True(start.IsSuccessStatusCode, started);
        using var status = JsonDocument.Parse(started);
        Assert.Equal("1.2.0", status.RootElement.GetProperty("candidate").GetString());
        Assert.Equal("Progressing", status.RootElement.GetProperty("phase").GetString());
    }

    private static void RequireContextCandidate()
    {
        if (!File.Exists(Path.Combine(ServiceProcess.AllBundledModelsDirectory, "har-cnn-bilstm-1.2.0.onnx")))
        {
            Assert.Skip("Skipped: the bundled candidate har-cnn-bilstm-1.2.0.onnx is not built beside the service.");
        }
    }

    private static async Task<HttpResponseMessage> PredictAsync(HttpClient client, float[] windows)
    {
        var bytes = new byte[windows.Length * sizeof(float)];
        Buffer.BlockCopy(windows, 0, bytes, 0, bytes.Length);
        var content = new ByteArrayContent(bytes);
        content.Headers.ContentType = new MediaTypeHeaderValue("application/octet-stream");
        using var request = new HttpRequestMessage(HttpMethod.Post, "/v1/predict") { Content = content };
        request.Headers.Add("X-Stream-Id", "device-1");
        return await client.SendAsync(request, Ct);
    }

    private static StringContent Json(string body) => new(body, Encoding.UTF8, "application/json");
}
