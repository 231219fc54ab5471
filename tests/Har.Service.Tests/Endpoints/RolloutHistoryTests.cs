using System.Net;
using System.Text.Json;

namespace Har.Service.Tests.Endpoints;

/// <summary>
/// Issue 14 (API): <c>GET /v1/rollouts</c> (it was 405) lists every rollout, newest first, with its outcome, from the
/// audit log (the controller keeps only the current one): an aborted rollout, a rolled-back one with its trigger and
/// reason, and the one in progress; paged with page_size and next_page, filtered by outcome and candidate.
/// </summary>
public sealed class RolloutHistoryTests
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task History_ListsEveryRollout_NewestFirst_WithOutcomes_AndPages()
    {
        await using var service = await ServiceProcess.StartAsync(new Dictionary<string, string> { [ServiceProcess.KeysInFile] = "" }, cancellationToken: Ct);
        using var operatorClient = service.CreateClient(service.OperatorKey);
        using var reader = service.CreateClient(service.AuditorKey); // names the acting keys (readers without the operator or auditor role see them hidden: ActorNamesTests)
        var versions = Directory.GetFiles(service.ModelsDirectory, "*.onnx")
            .Select(f => Har.Inference.ModelCard.Load(f).ModelVersion)
            .OrderBy(v => Version.Parse(v.Split('-', '+')[0]))
            .ToArray();
        var champion = versions[0];
        var candidate = versions[^1];

        // Before any rollout: an empty history, not a 404 or 405.
        using (var empty = await GetJsonAsync(reader, "/v1/rollouts"))
        {
            Assert.Empty(empty.RootElement.GetProperty("rollouts").EnumerateArray());
            Assert.Null(empty.RootElement.GetProperty("next_page").GetString());
        }

        await StartAsync(operatorClient, candidate, "first: aborted");
        await CommandAsync(operatorClient, "abort", "history test abort");
        await StartAsync(operatorClient, candidate, "second: rolled back");
        await CommandAsync(operatorClient, "rollback", "history test rollback");
        await StartAsync(operatorClient, candidate, "third: running");

        using var all = await GetJsonAsync(reader, "/v1/rollouts");
        var rollouts = all.RootElement.GetProperty("rollouts").EnumerateArray().ToArray();
        Assert.Equal(["in_progress", "rolled_back", "aborted"], rollouts.Select(r => r.GetProperty("outcome").GetString()));
        Assert.Equal(3, rollouts.Select(r => r.GetProperty("rollout_id").GetString()).Distinct().Count());
        foreach (var r in rollouts)
        {
            Assert.Equal(champion, r.GetProperty("champion").GetString());
            Assert.Equal(candidate, r.GetProperty("candidate").GetString());
            Assert.Equal("canary", r.GetProperty("strategy").GetString());
            Assert.Equal("test-operator", r.GetProperty("started_by").GetString());
            Assert.True(r.GetProperty("transitions").GetInt32() >= 1);
        }

        // The one in progress is the controller's current rollout, and has no end.
        using (var current = await GetJsonAsync(reader, "/v1/rollouts/current"))
        {
            Assert.Equal(current.RootElement.GetProperty("rollout_id").GetString(), rollouts[0].GetProperty("rollout_id").GetString());
        }

        Assert.Equal(JsonValueKind.Null, rollouts[0].GetProperty("ended_at").ValueKind);
        Assert.Equal("RolledBack", rollouts[1].GetProperty("phase").GetString());
        var rollback = rollouts[1].GetProperty("rollback");
        Assert.Equal("manual", rollback.GetProperty("trigger").GetString());
        Assert.Contains("history test rollback", rollback.GetProperty("reason").GetString(), StringComparison.Ordinal);
        Assert.Equal("test-operator", rollback.GetProperty("actor").GetString());
        Assert.True(rollouts[1].GetProperty("duration_seconds").GetDouble() >= 0);
        Assert.Equal("Aborted", rollouts[2].GetProperty("phase").GetString());
        Assert.Equal(JsonValueKind.Null, rollouts[2].GetProperty("rollback").ValueKind);

        // Pages of one, newest first, then the end.
        var paged = new List<string>();
        string? page = null;
        do
        {
            using var json = await GetJsonAsync(reader, "/v1/rollouts?page_size=1" + (page is null ? "" : "&page=" + Uri.EscapeDataString(page)));
            paged.AddRange(json.RootElement.GetProperty("rollouts").EnumerateArray().Select(r => r.GetProperty("rollout_id").GetString()!));
            page = json.RootElement.GetProperty("next_page").GetString();
        }
        while (page is not null);

        Assert.Equal(rollouts.Select(r => r.GetProperty("rollout_id").GetString()), paged);

        // Filters.
        using (var aborted = await GetJsonAsync(reader, "/v1/rollouts?outcome=aborted"))
        {
            Assert.Equal([rollouts[2].GetProperty("rollout_id").GetString()], aborted.RootElement.GetProperty("rollouts").EnumerateArray().Select(r => r.GetProperty("rollout_id").GetString()));
        }

        using (var other = await GetJsonAsync(reader, "/v1/rollouts?candidate=" + Uri.EscapeDataString(champion)))
        {
            Assert.Empty(other.RootElement.GetProperty("rollouts").EnumerateArray());
        }
    }

    [Fact]
    public async Task ATransitionAppendedAgainAfterTheEnd_DoesNotReopenTheRollout()
    {
        // Found from outside on a fleet: a leader paused (SIGSTOP) and resumed appended a transition its successor had
        // already written, after the rollout had been rolled back; the history then listed the rollout as in progress for
        // good. The log is append-only, so the duplicate stays: the history reads the outbox's sequence numbers.
        var ct = Ct;
        await using var first = await ServiceProcess.StartAsync(new Dictionary<string, string> { [ServiceProcess.KeysInFile] = "" }, cancellationToken: ct);
        using (var operatorClient = first.CreateClient(first.OperatorKey))
        {
            await StartAsync(operatorClient, "1.1.0", "then rolled back");
            await CommandAsync(operatorClient, "rollback", "duplicate test");
        }

        await first.KillAsync();
        using (var log = Har.Audit.AuditLog.Open(new Har.Audit.AuditLogOptions { Directory = Path.Combine(first.DataDirectory, "audit"), EnableMetrics = false }))
        {
            var transitions = log.Query(new Har.Audit.AuditQuery { EventType = "rollout.transition", PageSize = 100 }).Entries;
            var reopening = transitions.Select(e => (Har.Audit.AuditEvent)e.Record).First(e => e.ActionDetails.GetProperty("to").GetString() == "Progressing");
            await log.AppendAsync(reopening, ct); // as the stalled leader did: the same record, after the end
        }

        await using var restarted = await ServiceProcess.StartAsync(new Dictionary<string, string> { ["Har:Service:DataDirectory"] = first.DataDirectory, ["Har:ModelsDirectory"] = first.ModelsDirectory }, cancellationToken: ct);
        using var auditor = restarted.CreateClient(restarted.AuditorKey);
        using var history = await GetJsonAsync(auditor, "/v1/rollouts");
        var rollout = Assert.Single(history.RootElement.GetProperty("rollouts").EnumerateArray());
        Assert.Equal(("RolledBack", "rolled_back"), (rollout.GetProperty("phase").GetString(), rollout.GetProperty("outcome").GetString()));
        using var open = await GetJsonAsync(auditor, "/v1/rollouts?outcome=in_progress");
        Assert.Empty(open.RootElement.GetProperty("rollouts").EnumerateArray());
    }

    private static async Task StartAsync(HttpClient operatorClient, string candidate, string reason)
    {
        using var start = await operatorClient.PostAsync("/v1/rollouts", ServiceFixture.Json($"{{\"candidate\":\"{candidate}\",\"strategy\":\"canary\",\"reason\":\"{reason}\"}}"), Ct);
        Assert.True(start.StatusCode == HttpStatusCode.Accepted, $"rollout start: {(int)start.StatusCode} {await start.Content.ReadAsStringAsync(Ct)}");
    }

    private static async Task CommandAsync(HttpClient operatorClient, string action, string reason)
    {
        using var response = await operatorClient.PostAsync("/v1/rollouts/current/" + action, ServiceFixture.Json($"{{\"reason\":\"{reason}\"}}"), Ct);
        Assert.True(response.StatusCode == HttpStatusCode.OK, $"{action}: {(int)response.StatusCode} {await response.Content.ReadAsStringAsync(Ct)}");
    }

    private static async Task<JsonDocument> GetJsonAsync(HttpClient client, string path)
    {
        using var response = await client.GetAsync(path, Ct);
        var text = await response.Content.ReadAsStringAsync(Ct);
        Assert.True(response.StatusCode == HttpStatusCode.OK, $"{path}: {(int)response.StatusCode} {text}");
        return JsonDocument.Parse(text);
    }
}
