using System.Net;
using System.Text.Json;

namespace Har.Service.Tests.Endpoints;

/// <summary>
/// Issue 17, point 11: rollout actions are taken by exact name only. <c>/v1/rollouts/current/1</c> was parsed
/// as the enum value 1 (pause) and paused a running rollout; numeric, cased, padded and combined names are 400
/// and leave the rollout as it was. The same for a command's <c>expected_phase</c>, a phase by name (any case).
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

    [Fact]
    public async Task ExpectedPhase_OnlyByName_NumbersCombinationsAndPaddingAre400_AndChangeNothing()
    {
        // "1" was taken as the phase Progressing, "Progressing,Paused" as the flags value 3 (AwaitingApproval), " progressing " as Progressing.
        await using var service = await ServiceProcess.StartAsync(new Dictionary<string, string> { [ServiceProcess.KeysInFile] = "" }, cancellationToken: Ct);
        using var operatorClient = service.CreateClient(service.OperatorKey);
        var candidate = Directory.GetFiles(service.ModelsDirectory, "*.onnx")
            .Select(f => Har.Inference.ModelCard.Load(f).ModelVersion)
            .OrderByDescending(v => Version.Parse(v.Split('-', '+')[0]))
            .First();
        using (var start = await operatorClient.PostAsync("/v1/rollouts", ServiceFixture.Json($"{{\"candidate\":\"{candidate}\",\"strategy\":\"canary\",\"reason\":\"expected_phase\"}}"), Ct))
        {
            Assert.True(start.StatusCode == HttpStatusCode.Accepted, $"rollout start: {(int)start.StatusCode} {await start.Content.ReadAsStringAsync(Ct)}");
        }

        var (phase, revision) = await StatusAsync(operatorClient);
        var number = ((int)Enum.Parse<Har.Deployment.RolloutPhase>(phase)).ToString(System.Globalization.CultureInfo.InvariantCulture);
        foreach (var bad in new[] { number, "0", "-1", "0x1", $"{phase},Paused", $"{phase.ToLowerInvariant()},paused", $" {phase.ToLowerInvariant()} ", $"{phase} ", $"\\t{phase}", "Canary", "" })
        {
            foreach (var path in new[] { "/v1/rollouts/current/pause", "/v1/rollouts/current/abort", "/v1/rollouts/rollback", "/v1/rollouts/current/rollback" })
            {
                using var response = await operatorClient.PostAsync(path, ServiceFixture.Json($"{{\"expected_phase\":\"{bad}\",\"reason\":\"stale guard\"}}"), Ct);
                var body = await response.Content.ReadAsStringAsync(Ct);
                Assert.True(response.StatusCode == HttpStatusCode.BadRequest, $"{path} with expected_phase '{bad}': {(int)response.StatusCode} {body}");
                Assert.Equal("application/problem+json", response.Content.Headers.ContentType?.MediaType);
                Assert.Contains($"expected one phase by name: {string.Join(", ", Enum.GetNames<Har.Deployment.RolloutPhase>())}", body, StringComparison.Ordinal);
            }
        }

        Assert.Equal((phase, revision), await StatusAsync(operatorClient));

        // The name in any case is a phase.
        using (var pause = await operatorClient.PostAsync("/v1/rollouts/current/pause", ServiceFixture.Json($"{{\"expected_phase\":\"{phase.ToLowerInvariant()}\"}}"), Ct))
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
