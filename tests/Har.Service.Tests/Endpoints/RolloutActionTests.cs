using System.Net;
using System.Text.Json;

namespace Har.Service.Tests.Endpoints;

/// <summary>
/// Issue 17, point 11: rollout actions are taken by exact name only. <c>/v1/rollouts/current/1</c> was parsed
/// as the enum value 1 (pause) and paused a running rollout; numeric, cased, padded and combined names are 400
/// and leave the rollout as it was.
/// </summary>
public sealed class RolloutActionTests
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task NumericAndOtherNonCanonicalActions_Are400_AndChangeNothing()
    {
        await using var service = await ServiceProcess.StartAsync(new Dictionary<string, string> { [ServiceProcess.KeysInFile] = "" }, cancellationToken: Ct);
        using var operatorClient = service.CreateClient(service.OperatorKey);
        var candidate = Directory.GetFiles(service.ModelsDirectory, "*.onnx")
            .Select(f => Har.Inference.ModelCard.Load(f).ModelVersion)
            .OrderByDescending(v => Version.Parse(v.Split('-', '+')[0]))
            .First();
        using (var start = await operatorClient.PostAsync("/v1/rollouts", ServiceFixture.Json($"{{\"candidate\":\"{candidate}\",\"strategy\":\"canary\",\"reason\":\"point 11\"}}"), Ct))
        {
            Assert.True(start.StatusCode == HttpStatusCode.Accepted, $"rollout start: {(int)start.StatusCode} {await start.Content.ReadAsStringAsync(Ct)}");
        }

        var (phase, revision) = await StatusAsync(operatorClient);
        Assert.NotEqual("Paused", phase);

        foreach (var action in new[] { "1", "0", "2", "-1", "Pause", "PAUSE", "%20pause", "pause%20", "pause,abort", "1,2", "start", "Start", "0x1" })
        {
            using var response = await operatorClient.PostAsync("/v1/rollouts/current/" + action, null, Ct);
            var body = await response.Content.ReadAsStringAsync(Ct);
            Assert.True(response.StatusCode == HttpStatusCode.BadRequest, $"action '{action}': {(int)response.StatusCode} {body}");
            Assert.Equal("application/problem+json", response.Content.Headers.ContentType?.MediaType);
            Assert.Contains("expected approve, promote, pause, resume, abort or rollback", body, StringComparison.Ordinal);
        }

        Assert.Equal((phase, revision), await StatusAsync(operatorClient));

        // The canonical name still works.
        using (var pause = await operatorClient.PostAsync("/v1/rollouts/current/pause", null, Ct))
        {
            Assert.True(pause.StatusCode == HttpStatusCode.OK, $"pause: {(int)pause.StatusCode} {await pause.Content.ReadAsStringAsync(Ct)}");
        }

        Assert.Equal("Paused", (await StatusAsync(operatorClient)).Phase);
    }

    private static async Task<(string Phase, long Revision)> StatusAsync(HttpClient client)
    {
        using var json = JsonDocument.Parse(await client.GetStringAsync("/v1/rollouts/current", Ct));
        return (json.RootElement.GetProperty("phase").GetString()!, json.RootElement.GetProperty("revision").GetInt64());
    }
}
