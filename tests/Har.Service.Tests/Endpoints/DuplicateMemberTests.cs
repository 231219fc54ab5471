using System.Net;
using System.Text.Json;

namespace Har.Service.Tests.Endpoints;

/// <summary>
/// A JSON member given twice. The hostile-client probe sent <c>{"candidate": "9.9.9", "strategy": "canary", "candidate": "1.1.0"}</c>
/// and a rollout of 1.1.0 started: the operation bodies (rollout start and commands, rollback, incidents, backups) and the
/// feedback labels read a repeated member as its last value, while a reviewer, a proxy's filter or a log that reads the
/// first saw 9.9.9; a command's guard (<c>"expected_revision": 3, "expected_revision": null</c>) was dropped the same
/// way. The prediction bodies and audit events already refused repeated members; now every body does, with a 400
/// naming the member, and nothing is changed.
/// </summary>
public sealed class DuplicateMemberTests
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task RepeatedMember_InRolloutStartCommandAndFeedback_Is400NamingIt_AndChangesNothing()
    {
        await using var service = await ServiceProcess.StartAsync(new Dictionary<string, string> { [ServiceProcess.KeysInFile] = "" }, cancellationToken: Ct);
        using var operatorClient = service.CreateClient(service.OperatorKey);
        using var labeller = service.CreateClient(service.LabellerKey);
        var candidate = Directory.GetFiles(service.ModelsDirectory, "*.onnx")
            .Select(f => Har.Inference.ModelCard.Load(f).ModelVersion)
            .OrderByDescending(v => Version.Parse(v.Split('-', '+')[0]))
            .First();

        // Rollout start: refused, and no rollout exists.
        await AssertRepeatedAsync(operatorClient, "/v1/rollouts", $"{{\"candidate\":\"9.9.9\",\"strategy\":\"canary\",\"candidate\":\"{candidate}\"}}", "candidate");

        // A member the body does not have is named in the service's words, with what the body takes (System.Text.Json's
        // own message names a .NET member and type: "could not be mapped to any .NET member contained in type …").
        using (var unknown = await operatorClient.PostAsync("/v1/rollouts", ServiceFixture.Json($"{{\"candidate\":\"{candidate}\",\"strategy\":\"canary\",\"extra\":1}}"), Ct))
        {
            var body = await unknown.Content.ReadAsStringAsync(Ct);
            Assert.True(unknown.StatusCode == HttpStatusCode.BadRequest, body);
            var detail = JsonDocument.Parse(body).RootElement.GetProperty("detail").GetString()!;
            Assert.StartsWith("'extra' is not a member of this body (in $.extra); remove it. Expected {", detail, StringComparison.Ordinal);
            Assert.Contains("\"candidate\"", detail, StringComparison.Ordinal);
            Assert.DoesNotContain(".NET", detail, StringComparison.Ordinal);
        }

        using (var current = await operatorClient.GetAsync("/v1/rollouts/current", Ct))
        {
            Assert.Equal(HttpStatusCode.NotFound, current.StatusCode);
        }

        using (var start = await operatorClient.PostAsync("/v1/rollouts", ServiceFixture.Json($"{{\"candidate\":\"{candidate}\",\"strategy\":\"canary\",\"reason\":\"duplicates\"}}"), Ct))
        {
            Assert.True(start.StatusCode == HttpStatusCode.Accepted, $"rollout start: {(int)start.StatusCode} {await start.Content.ReadAsStringAsync(Ct)}");
        }

        // A command whose guard is given twice (a stale revision, then null) is refused, not run unguarded.
        var before = await StatusAsync(operatorClient);
        await AssertRepeatedAsync(operatorClient, "/v1/rollouts/current/pause", $"{{\"expected_revision\":{before.Revision + 100},\"expected_revision\":null}}", "expected_revision");
        await AssertRepeatedAsync(operatorClient, "/v1/rollouts/rollback", "{\"to\":\"9.9.9\",\"reason\":\"a\",\"to\":\"1.0.0\"}", "to");
        Assert.Equal(before, await StatusAsync(operatorClient));

        // Feedback: a label with its activity twice labels nothing; the same label given once labels the stream's windows.
        var card = ServiceFixture.ChampionCard(service.ModelsDirectory);
        using (var append = await labeller.PostAsync("/v1/streams/dup-1/samples", ServiceFixture.Bytes(Frames(card.ChannelCount, card.WindowLength * 2), "application/octet-stream"), Ct))
        {
            Assert.True(append.StatusCode == HttpStatusCode.OK, $"append: {(int)append.StatusCode} {await append.Content.ReadAsStringAsync(Ct)}");
        }

        var end = card.WindowLength * 2;
        await AssertRepeatedAsync(labeller, "/v1/feedback", $"{{\"labels\":[{{\"stream_id\":\"dup-1\",\"activity\":\"WALKING\",\"activity\":\"SITTING\",\"start_frame\":0,\"end_frame\":{end}}}]}}", "activity");
        // The same member in another case (found from outside: "STREAM_ID" after "stream_id" on /v1/predict attributed
        // the windows to the second; "ACTIVITY" and misspelt members of a label were silently ignored).
        foreach (var (json, expected) in new[]
        {
            ($"{{\"labels\":[{{\"stream_id\":\"dup-1\",\"activity\":\"WALKING\",\"ACTIVITY\":\"SITTING\",\"start_frame\":0,\"end_frame\":{end}}}]}}", "'ACTIVITY' is written in another case than 'activity'"),
            ($"{{\"labels\":[{{\"stream_id\":\"dup-1\",\"activty\":\"WALKING\",\"start_frame\":0,\"end_frame\":{end}}}]}}", "'activty' is not a member of this body; remove it. Expected stream_id, activity"),
            ($"{{\"labels\":[{{\"stream_id\":\"dup-1\",\"activity\":\"WALKING\",\"start_frame\":0,\"end_frame\":{end}}}],\"note\":1}}", "'note' is not a member of this body; remove it. Expected labels"),
        })
        {
            using var refused = await labeller.PostAsync("/v1/feedback", ServiceFixture.Json(json), Ct);
            var body = await refused.Content.ReadAsStringAsync(Ct);
            Assert.True(refused.StatusCode == HttpStatusCode.BadRequest, $"{json}: {(int)refused.StatusCode} {body}");
            Assert.Contains(expected, body, StringComparison.Ordinal);
        }

        var window = string.Join(",", Enumerable.Repeat("0.1", card.WindowLength * card.ChannelCount));
        using (var predict = await labeller.PostAsync("/v1/predict", ServiceFixture.Json($"{{\"stream_id\":\"dupA\",\"STREAM_ID\":\"dupB\",\"windows\":[[{window}]]}}"), Ct))
        {
            var body = await predict.Content.ReadAsStringAsync(Ct);
            Assert.True(predict.StatusCode == HttpStatusCode.BadRequest, $"predict: {(int)predict.StatusCode} {body}");
            Assert.Contains("'stream_id' appears twice (member names are matched ignoring case)", body, StringComparison.Ordinal);
        }

        using (var once = await labeller.PostAsync("/v1/feedback", ServiceFixture.Json($"{{\"labels\":[{{\"stream_id\":\"dup-1\",\"activity\":\"WALKING\",\"start_frame\":0,\"end_frame\":{end}}}]}}"), Ct))
        {
            var body = await once.Content.ReadAsStringAsync(Ct);
            Assert.True(once.StatusCode == HttpStatusCode.OK, $"feedback: {(int)once.StatusCode} {body}");
            Assert.True(JsonDocument.Parse(body).RootElement.GetProperty("labelled_windows").GetInt32() > 0, "the refused label had already labelled the windows: " + body);
        }
    }

    private static async Task AssertRepeatedAsync(HttpClient client, string path, string json, string member)
    {
        using var response = await client.PostAsync(path, ServiceFixture.Json(json), Ct);
        var body = await response.Content.ReadAsStringAsync(Ct);
        Assert.True(response.StatusCode == HttpStatusCode.BadRequest, $"{path} {json}: {(int)response.StatusCode} {body}");
        Assert.Equal("application/problem+json", response.Content.Headers.ContentType?.MediaType);
        var detail = JsonDocument.Parse(body).RootElement.GetProperty("detail").GetString()!;
        Assert.Contains($"'{member}' is given twice", detail, StringComparison.Ordinal);
        Assert.Contains("give each member once", detail, StringComparison.Ordinal);
        Assert.DoesNotContain("expected type", detail, StringComparison.Ordinal);
    }

    private static async Task<(string Phase, long Revision)> StatusAsync(HttpClient client)
    {
        using var json = JsonDocument.Parse(await client.GetStringAsync("/v1/rollouts/current", Ct));
        return (json.RootElement.GetProperty("phase").GetString()!, json.RootElement.GetProperty("revision").GetInt64());
    }

    private static byte[] Frames(int channels, int frames)
    {
        var values = new float[channels * frames];
        for (var i = 0; i < values.Length; i++)
        {
            values[i] = (float)Math.Sin(i * 0.01);
        }

        var bytes = new byte[values.Length * sizeof(float)];
        Buffer.BlockCopy(values, 0, bytes, 0, bytes.Length);
        return bytes;
    }
}
