using System.Net;
using System.Text.Json;

namespace Har.Service.Tests.Audit;

/// <summary>
/// <c>POST /v1/audit/events</c> stored an entity_id with NUL or CR/LF and a 100,000-character event_type, silently
/// replaced an <c>actor</c> and a <c>timestamp</c> given in the body, and answered a duplicate member with "An item with
/// the same key has already been added". The identifiers are bounded printable names now, actor and timestamp in the
/// body are refused (the service sets them), a duplicate is named as one; nothing refused is appended.
/// </summary>
public sealed class AuditEventFieldTests(ServiceFixture fixture) : IClassFixture<ServiceFixture>
{
    private const string Type = "ops.field-test";

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private ServiceProcess Service => fixture.Service;

    public static TheoryData<string, string> Refused => new()
    {
        { Event(entityId: "a\\u0000b"), "entity_id holds a control character (U+0000) at position 1" },
        { Event(entityId: "line\\r\\ninjected"), "entity_id holds a control character (U+000D) at position 4" },
        { Event(entityId: "\\u202Egnp.exe"), "entity_id holds a format character (U+202E) at position 0" },
        { Event(entityId: "a\\u2028b"), "entity_id holds a line separator (U+2028)" },
        { Event(entityId: new string('i', 257)), "entity_id has 257 characters; expected 1 to 256" },
        { Event(eventType: new string('x', 100_000)), "event_type has 100000 characters; expected 1 to 64 characters matching ^[a-z][a-z0-9_.-]*$" },
        { Event(eventType: "ops." + new string('x', 61)), "event_type has 65 characters" },
        { Event(eventType: "Ops.Note"), "event_type 'Ops.Note' is not a type name" },
        { Event(eventType: "ops note"), "event_type 'ops note' is not a type name" },
        { Event(eventType: "ops.note\\n"), "event_type 'ops.note\\u000a' is not a type name" },
        { Event(eventType: "1ops"), "starting with a letter" },
        { Event(entityType: "node\\u0000"), "entity_type 'node\\u0000' is not a type name" },
        { Event(entityType: new string('n', 65)), "entity_type has 65 characters" },
        { Event(severity: "info\\r\\n"), "severity is 'info\\u000d\\u000a'; expected one of debug, info, notice, warning, error, critical" },
        { Event(extra: "\"actor\": \"admin\""), "The body sets 'actor'; the service sets actor (the API key's name) and timestamp (its clock) itself" },
        { Event(extra: "\"timestamp\": \"1970-01-01T00:00:00Z\""), "The body sets 'timestamp'" },
        { Event(extra: $"\"event_type\": \"{Type}\""), "Duplicate property 'event_type'" },
        { Event(details: "{\"ticket\": 1, \"ticket\": 2}"), "Duplicate property 'ticket'" },

        // Canonical JSON numbers are doubles: these were recorded as 123456789012345680, 9007199254740992 and 0, with a 201.
        { Event(details: "{\"ticket\": 123456789012345678}"), "$.action_details.ticket: the number 123456789012345678 cannot be recorded exactly" },
        { Event(details: "{\"n\": 9007199254740993}"), "the nearest is 9007199254740992. Send it as a string" },
        { Event(details: "{\"a\": [1, {\"b\": 1E-400}]}"), "$.action_details.a[1].b: the number 1E-400 cannot be recorded exactly" },
    };

    [Fact]
    public async Task Append_NumbersADoubleHoldsExactly_AreAccepted()
    {
        using var operatorClient = Service.CreateClient(Service.OperatorKey);
        using var response = await operatorClient.PostAsync("/v1/audit/events", ServiceFixture.Json(Event(details: "{\"a\": 1.10, \"b\": 9007199254740992, \"c\": 0.1, \"d\": -0.0, \"e\": 1e21, \"f\": 2.5E-3}")), Ct);
        Assert.True(response.StatusCode == HttpStatusCode.Created, $"{(int)response.StatusCode} {await response.Content.ReadAsStringAsync(Ct)}");
    }

    [Theory]
    [MemberData(nameof(Refused))]
    public async Task Append_BadField_Is400_SayingWhatIsExpected_AndAppendsNothing(string body, string expected)
    {
        using var operatorClient = Service.CreateClient(Service.OperatorKey);
        using var auditor = Service.CreateClient(Service.AuditorKey);
        var before = (await ServiceQueries.AuditEntriesAsync(auditor, Type, Ct)).Count;

        using var response = await operatorClient.PostAsync("/v1/audit/events", ServiceFixture.Json(body), Ct);
        var text = await response.Content.ReadAsStringAsync(Ct);
        Assert.True(response.StatusCode == HttpStatusCode.BadRequest, $"{(int)response.StatusCode} {text}");
        Assert.Equal("application/problem+json", response.Content.Headers.ContentType?.MediaType);
        Assert.Contains(expected, JsonDocument.Parse(text).RootElement.GetProperty("detail").GetString(), StringComparison.Ordinal);
        Assert.DoesNotContain("same key", text, StringComparison.Ordinal);
        Assert.Equal(before, (await ServiceQueries.AuditEntriesAsync(auditor, Type, Ct)).Count);
    }

    [Fact]
    public async Task Append_AtTheBounds_IsRecordedAsSent_WithTheKeysNameAndTheServersTime()
    {
        using var operatorClient = Service.CreateClient(Service.OperatorKey);
        using var auditor = Service.CreateClient(Service.AuditorKey);
        var eventType = "ops." + new string('x', 60);
        var prefix = "capteur-été-\U0001F600-שעון-";
        var entityId = prefix + new string('i', 256 - prefix.Length);

        var sent = DateTimeOffset.UtcNow;
        using var response = await operatorClient.PostAsync("/v1/audit/events", ServiceFixture.Json(JsonSerializer.Serialize(new
        {
            event_type = eventType,
            entity_type = "node_2-b.x",
            entity_id = entityId,
            severity = "notice",
            action_details = new { note = "line\nbreaks are fine in details" },
        })), Ct);
        var text = await response.Content.ReadAsStringAsync(Ct);
        Assert.True(response.StatusCode == HttpStatusCode.Created, $"{(int)response.StatusCode} {text}");

        var index = JsonDocument.Parse(text).RootElement.GetProperty("index").GetInt64();
        using var entry = JsonDocument.Parse(await auditor.GetStringAsync($"/v1/audit/events/{index}", Ct));
        Assert.Equal(eventType, entry.RootElement.GetProperty("event_type").GetString());
        Assert.Equal(entityId, entry.RootElement.GetProperty("entity_id").GetString());
        Assert.Equal("test-operator", entry.RootElement.GetProperty("actor").GetString());
        var at = entry.RootElement.GetProperty("timestamp").GetDateTimeOffset();
        Assert.InRange(at, sent.AddMinutes(-1), DateTimeOffset.UtcNow.AddMinutes(1));
    }

    private static string Event(string eventType = Type, string entityType = "node", string entityId = "gpu-3", string severity = "info", string details = "{}", string? extra = null) =>
        $$"""{"event_type": "{{eventType}}", "entity_type": "{{entityType}}", "entity_id": "{{entityId}}", "severity": "{{severity}}", "action_details": {{details}}{{(extra is null ? "" : ", " + extra)}}}""";
}
