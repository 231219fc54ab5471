using System.Net;
using System.Text.Json;

namespace Har.Service.Tests.Audit;

/// <summary>
/// <c>POST /v1/audit/events</c> (operator) accepted any event type, including the ones the service writes and reads back
/// as its history: a forged <c>rollout.transition</c> listed a succeeded rollout in <c>GET /v1/rollouts</c>, a
/// <c>deployment.completed</c> showed an approval in <c>GET /v1/models/{version}</c>, a <c>rollout.incident</c> made an
/// incident. The system's namespaces are refused (400 naming them); an operator's events in its own namespace are
/// accepted and no reader takes them for the system's.
/// </summary>
public sealed class ReservedEventTypeTests(ServiceFixture fixture) : IClassFixture<ServiceFixture>
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private ServiceProcess Service => fixture.Service;

    [Theory]
    [InlineData("rollout.transition")]
    [InlineData("rollout.rollback")]
    [InlineData("rollout.rollback.step")]
    [InlineData("rollout.incident")]
    [InlineData("rollout.anything-new")]
    [InlineData("deployment.completed")]
    [InlineData("deployment")]
    [InlineData("rollback")]
    [InlineData("registry.registered")]
    [InlineData("registry.registration_failed")]
    [InlineData("backup.created")]
    [InlineData("audit.log.repaired")]
    [InlineData("http.operation")]
    [InlineData("http.refusals")]
    [InlineData("model.promoted")]
    [InlineData("drift.report")]
    public async Task Append_SystemEventType_Is400_NamingTheReservedNamespaces(string eventType)
    {
        using var operatorClient = Service.CreateClient(Service.OperatorKey);
        using var auditor = Service.CreateClient(Service.AuditorKey);
        using var response = await operatorClient.PostAsync("/v1/audit/events", Event(eventType, "rollout", "rollout-forged", """{"to": "Succeeded"}"""), Ct);
        var body = await response.Content.ReadAsStringAsync(Ct);
        Assert.True(response.StatusCode == HttpStatusCode.BadRequest, $"{eventType}: {(int)response.StatusCode} {body}");
        Assert.Equal("application/problem+json", response.Content.Headers.ContentType?.MediaType);
        var detail = JsonDocument.Parse(body).RootElement.GetProperty("detail").GetString()!;
        Assert.Contains("only the service writes", detail, StringComparison.Ordinal);
        Assert.Contains("deployment.*, ", detail, StringComparison.Ordinal);
        Assert.Contains("rollout.*", detail, StringComparison.Ordinal);
        Assert.Contains("'ops.maintenance'", detail, StringComparison.Ordinal);
        Assert.DoesNotContain(await ServiceQueries.AuditEntriesAsync(auditor, eventType, Ct), e => e.GetProperty("entity_id").GetString() == "rollout-forged");
    }

    [Fact]
    public async Task ForgedHistory_IsRefused_AndNoReaderShowsIt()
    {
        using var operatorClient = Service.CreateClient(Service.OperatorKey);
        using var reader = Service.CreateClient(Service.PredictorKey);
        var champion = ServiceFixture.ChampionCard(Service.ModelsDirectory).ModelVersion;

        // What the probe sent: a rollout that "succeeded", a completed deployment "approved by mallory", an incident.
        foreach (var (type, details) in new[]
        {
            ("rollout.transition", $$"""{"candidate": "{{champion}}", "champion": "{{champion}}", "strategy": "canary", "to": "Pending"}"""),
            ("rollout.transition", """{"from": "Promoting", "to": "Succeeded", "message": "promoted"}"""),
            ("deployment.completed", $$"""{"version": "{{champion}}", "approved_by": ["mallory"], "passed_smoke_test": true}"""),
            ("rollout.incident", """{"summary": "nothing happened", "incident_id": "incident-rollout-forged"}"""),
        })
        {
            using var response = await operatorClient.PostAsync("/v1/audit/events", Event(type, "rollout", "rollout-forged", details), Ct);
            Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        }

        await AssertNoForgedHistoryAsync(reader, champion, "rollout-forged");
    }

    [Fact]
    public async Task OperatorEventsAboutARollout_AreAccepted_AndNotReadAsTheSystems()
    {
        using var operatorClient = Service.CreateClient(Service.OperatorKey);
        using var reader = Service.CreateClient(Service.PredictorKey);
        var champion = ServiceFixture.ChampionCard(Service.ModelsDirectory).ModelVersion;

        // Its own namespace, about a rollout, with the members the readers look for: an operator's note, not history.
        foreach (var (type, details) in new[]
        {
            ("ops.transition", $$"""{"candidate": "{{champion}}", "champion": "{{champion}}", "strategy": "canary", "to": "Succeeded", "sequence": 999}"""),
            ("ops.deployment.completed", $$"""{"version": "{{champion}}", "approved_by": ["mallory"], "sequence": 1000}"""),
            ("rollouts.incident", """{"summary": "a note", "sequence": 1001}"""),
        })
        {
            using var response = await operatorClient.PostAsync("/v1/audit/events", Event(type, "rollout", "rollout-ops", details), Ct);
            Assert.True(response.StatusCode == HttpStatusCode.Created, $"{type}: {(int)response.StatusCode} {await response.Content.ReadAsStringAsync(Ct)}");
        }

        await AssertNoForgedHistoryAsync(reader, champion, "rollout-ops");
    }

    [Fact]
    public async Task EveryEventTypeTheServiceWrote_IsRefused()
    {
        using var operatorClient = Service.CreateClient(Service.OperatorKey);
        using var auditor = Service.CreateClient(Service.AuditorKey);

        // A refused append and an accepted one make the service write its own events (registration at start, http.operation).
        using (await operatorClient.PostAsync("/v1/audit/events", Event("ops.probe", "test", "probe", "{}"), Ct))
        {
        }

        var written = (await ServiceQueries.AuditEntriesAsync(auditor, null, Ct))
            .Where(e => e.GetProperty("actor").GetString() != "test-operator" || e.GetProperty("event_type").GetString()!.StartsWith("http.", StringComparison.Ordinal))
            .Select(e => e.GetProperty("event_type").GetString()!)
            .Distinct(StringComparer.Ordinal)
            .ToList();
        Assert.Contains("http.operation", written);
        Assert.Contains("deployment", written);
        foreach (var type in written)
        {
            using var response = await operatorClient.PostAsync("/v1/audit/events", Event(type, "test", "probe", "{}"), Ct);
            Assert.True(response.StatusCode == HttpStatusCode.BadRequest, $"{type}, written by the service: {(int)response.StatusCode} {await response.Content.ReadAsStringAsync(Ct)}");
        }
    }

    private static async Task AssertNoForgedHistoryAsync(HttpClient reader, string champion, string rolloutId)
    {
        using (var rollouts = JsonDocument.Parse(await reader.GetStringAsync("/v1/rollouts?page_size=1000", Ct)))
        {
            Assert.DoesNotContain(rollouts.RootElement.GetProperty("rollouts").EnumerateArray(), r => r.GetProperty("rollout_id").GetString() == rolloutId);
        }

        using (var model = JsonDocument.Parse(await reader.GetStringAsync($"/v1/models/{champion}", Ct)))
        {
            Assert.Equal(JsonValueKind.Null, model.RootElement.GetProperty("deployment").ValueKind);
        }

        using var incident = await reader.GetAsync($"/v1/incidents/incident-{rolloutId}", Ct);
        Assert.Equal(HttpStatusCode.NotFound, incident.StatusCode);
    }

    private static StringContent Event(string type, string entityType, string entityId, string details) => ServiceFixture.Json(
        $$"""{"event_type": "{{type}}", "entity_type": "{{entityType}}", "entity_id": "{{entityId}}", "severity": "info", "action_details": {{details}}}""");
}
