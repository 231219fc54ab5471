using System.Globalization;
using System.Net;
using System.Text.Json;

namespace Har.Service.Tests.Endpoints;

/// <summary>
/// Issue 14 (API): audit queries filter by severity (exact or minimum), time range (ISO 8601, from inclusive, to
/// exclusive), entity and record kind; every list (audit events, models) pages with page_size and a page cursor; a
/// wrong, unknown, repeated or out-of-bounds parameter is a 400 problem that names it and what is expected.
/// </summary>
public sealed class ListQueryTests(ServiceFixture fixture) : IClassFixture<ServiceFixture>
{
    private static readonly string[] Severities = ["debug", "info", "notice", "warning", "error", "critical"];

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task AuditQuery_FiltersBySeverity_ExactAndMinimum()
    {
        var entity = "severity-" + Guid.NewGuid().ToString("N");
        await AppendAsync(entity, Severities);
        using var auditor = fixture.Service.CreateClient(fixture.Service.AuditorKey);

        var all = await EntriesAsync(auditor, $"entity_id={entity}");
        Assert.Equal(Severities, all.Select(Severity));

        Assert.Equal(["warning"], (await EntriesAsync(auditor, $"entity_id={entity}&severity=warning")).Select(Severity));
        Assert.Equal(["warning", "error", "critical"], (await EntriesAsync(auditor, $"entity_id={entity}&min_severity=warning")).Select(Severity));
        Assert.Equal(Severities, (await EntriesAsync(auditor, $"entity_id={entity}&min_severity=debug")).Select(Severity));

        // Only events have a severity: deployment records (the seeded versions) never match a severity filter.
        Assert.NotEmpty(await EntriesAsync(auditor, "kind=deployment"));
        Assert.Empty(await EntriesAsync(auditor, "kind=deployment&min_severity=debug"));
        Assert.Equal(Severities.Length, (await EntriesAsync(auditor, $"kind=event&entity_type=list-test&entity_id={entity}")).Count);
    }

    [Fact]
    public async Task AuditQuery_TimeRange_FromInclusive_ToExclusive()
    {
        var entity = "time-" + Guid.NewGuid().ToString("N");
        await AppendAsync(entity, ["info", "info", "info"]);
        using var auditor = fixture.Service.CreateClient(fixture.Service.AuditorKey);
        var mine = await EntriesAsync(auditor, $"entity_id={entity}");
        var first = Timestamp(mine[0]);
        var last = Timestamp(mine[^1]);

        // from = the first entry's time includes it; to = the first entry's time excludes it.
        Assert.Equal(3, (await EntriesAsync(auditor, $"entity_id={entity}&from={Iso(first)}")).Count);
        Assert.Empty(await EntriesAsync(auditor, $"entity_id={entity}&to={Iso(first)}"));
        Assert.Empty(await EntriesAsync(auditor, $"entity_id={entity}&from={Iso(last.AddTicks(1))}"));

        // Entries before the first one (the seeding at start) are all older than it.
        var earlier = await EntriesAsync(auditor, $"to={Iso(first)}");
        Assert.NotEmpty(earlier);
        Assert.All(earlier, e => Assert.True(Timestamp(e) < first, $"{Timestamp(e):O} is not before {first:O}"));

        // An offset and a date are ISO 8601 too: the same instant written at +02:00 selects the same entries.
        Assert.Equal(3, (await EntriesAsync(auditor, $"entity_id={entity}&from={Uri.EscapeDataString(first.ToOffset(TimeSpan.FromHours(2)).ToString("yyyy-MM-dd'T'HH:mm:ss.fffffffzzz", CultureInfo.InvariantCulture))}")).Count);
        Assert.Equal(3, (await EntriesAsync(auditor, $"entity_id={entity}&from={first.UtcDateTime:yyyy-MM-dd}")).Count);
    }

    [Fact]
    public async Task AuditQuery_Pages_WithoutGapsOrRepeats()
    {
        var entity = "pages-" + Guid.NewGuid().ToString("N");
        await AppendAsync(entity, ["info", "notice", "warning", "error", "critical"]);
        using var auditor = fixture.Service.CreateClient(fixture.Service.AuditorKey);

        var seen = new List<long>();
        var sizes = new List<int>();
        string? page = null;
        do
        {
            using var json = await GetJsonAsync(auditor, $"/v1/audit/events?entity_id={entity}&page_size=2" + (page is null ? "" : "&page=" + Uri.EscapeDataString(page)));
            var entries = json.RootElement.GetProperty("entries").EnumerateArray().Select(e => e.GetProperty("index").GetInt64()).ToArray();
            sizes.Add(entries.Length);
            seen.AddRange(entries);
            page = json.RootElement.GetProperty("next_page").GetString();
        }
        while (page is not null);

        Assert.Equal(5, seen.Count);
        Assert.Equal(seen.Order(), seen);
        Assert.Equal(seen.Count, seen.Distinct().Count());
        Assert.All(sizes.SkipLast(1), s => Assert.Equal(2, s));
    }

    [Theory]
    [InlineData("/v1/audit/events?severity=loud", "expected one of debug, info, notice, warning, error, critical")]
    [InlineData("/v1/audit/events?min_severity=WARNING", "expected one of debug")]
    [InlineData("/v1/audit/events?severity=info&min_severity=info", "not both")]
    [InlineData("/v1/audit/events?from=yesterday", "expected an ISO 8601 time")]
    [InlineData("/v1/audit/events?to=2026-13-45T99:99:99Z", "expected an ISO 8601 time")]
    [InlineData("/v1/audit/events?from=2030-01-01T00:00:00Z&to=2020-01-01T00:00:00Z", "is not before to")]
    [InlineData("/v1/audit/events?from=2030-01-01&to=2030-01-01", "is not before to")]
    [InlineData("/v1/audit/events?page_size=0", "expected an integer from 1 to 1000")]
    [InlineData("/v1/audit/events?page_size=1001", "expected an integer from 1 to 1000")]
    [InlineData("/v1/audit/events?page_size=abc", "expected an integer from 1 to 1000")]
    [InlineData("/v1/audit/events?page_size=2147483648", "expected an integer from 1 to 1000")]
    [InlineData("/v1/audit/events?page=garbage", "not a cursor this log issued")]
    [InlineData("/v1/audit/events?limit=5", "This API pages with page_size")]
    [InlineData("/v1/audit/events?skip=5", "This API pages with page_size")]
    [InlineData("/v1/audit/events?sevrity=info", "Unknown query parameter 'sevrity'")]
    [InlineData("/v1/audit/events?severity=info&severity=error", "given 2 times")]
    [InlineData("/v1/audit/events?kind=bogus", "expected deployment, rollback or event")]
    [InlineData("/v1/audit/events?entity_id=", "is empty")]
    [InlineData("/v1/models?limit=1", "This API pages with page_size")]
    [InlineData("/v1/models?page_size=0", "expected an integer from 1 to 1000")]
    [InlineData("/v1/models?page=9.9.9", "names no registered version")]
    [InlineData("/v1/rollouts?page_size=5000", "expected an integer from 1 to 1000")]
    [InlineData("/v1/rollouts?page=-1", "not a cursor this endpoint issued")]
    [InlineData("/v1/rollouts?outcome=won", "expected one of succeeded, rolled_back, aborted, failed, in_progress")]
    [InlineData("/v1/drift/alarms?cause=units", "expected one of Unknown, SampleRate, Units, SignFlip")]
    [InlineData("/v1/drift/alarms?cause=None", "expected one of Unknown")]
    [InlineData("/v1/drift/alarms?cause=3", "expected one of Unknown")]
    [InlineData("/v1/drift/alarms?cause=%203", "expected one of Unknown")]
    [InlineData("/v1/drift/alarms?cause=Units,Gain", "expected one of Unknown")]
    [InlineData("/v1/drift/alarms?cause=", "is empty")]
    [InlineData("/v1/drift/alarms?device=x", "Unknown query parameter 'device'")]
    [InlineData("/v1/drift/alarms?page_size=0", "expected an integer from 1 to 1000")]
    public async Task BadListQuery_Is400_SayingWhatIsExpected(string path, string expected)
    {
        using var auditor = fixture.Service.CreateClient(fixture.Service.AuditorKey);
        using var response = await auditor.GetAsync(path, Ct);
        var body = await response.Content.ReadAsStringAsync(Ct);
        Assert.True(response.StatusCode == HttpStatusCode.BadRequest, $"{path}: {(int)response.StatusCode} {body}");
        Assert.Equal("application/problem+json", response.Content.Headers.ContentType?.MediaType);
        Assert.Contains(expected, JsonDocument.Parse(body).RootElement.GetProperty("detail").GetString(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task Models_Page_InVersionOrder()
    {
        using var client = fixture.Service.CreateClient(fixture.Service.PredictorKey);
        using var all = await GetJsonAsync(client, "/v1/models?page_size=1000");
        var versions = all.RootElement.GetProperty("versions").EnumerateArray().Select(v => v.GetProperty("version").GetString()!).ToArray();
        Assert.True(versions.Length >= 2, $"expected the seeded versions, got {versions.Length}");
        Assert.Null(all.RootElement.GetProperty("next_page").GetString());

        var paged = new List<string>();
        string? page = null;
        do
        {
            using var json = await GetJsonAsync(client, "/v1/models?page_size=1" + (page is null ? "" : "&page=" + Uri.EscapeDataString(page)));
            var items = json.RootElement.GetProperty("versions").EnumerateArray().Select(v => v.GetProperty("version").GetString()!).ToArray();
            Assert.Single(items);
            Assert.False(string.IsNullOrEmpty(json.RootElement.GetProperty("current").GetString()));
            paged.AddRange(items);
            page = json.RootElement.GetProperty("next_page").GetString();
            Assert.True(page is null || page == items[0], "next_page is the last version of the page");
        }
        while (page is not null);

        Assert.Equal(versions, paged);
    }

    private async Task AppendAsync(string entity, IEnumerable<string> severities)
    {
        using var operatorClient = fixture.Service.CreateClient(fixture.Service.OperatorKey);
        foreach (var severity in severities)
        {
            using var response = await operatorClient.PostAsync(
                "/v1/audit/events",
                ServiceFixture.Json($$"""{"action_details": {}, "event_type": "list.test", "entity_type": "list-test", "entity_id": "{{entity}}", "severity": "{{severity}}"}"""),
                Ct);
            Assert.True(response.StatusCode == HttpStatusCode.Created, $"append {severity}: {(int)response.StatusCode} {await response.Content.ReadAsStringAsync(Ct)}");
        }
    }

    /// <summary>Every entry of an audit query (one page of 1000 is enough here; asserts there is no next page).</summary>
    private static async Task<List<JsonElement>> EntriesAsync(HttpClient auditor, string query)
    {
        using var json = await GetJsonAsync(auditor, "/v1/audit/events?page_size=1000&" + query);
        Assert.Null(json.RootElement.GetProperty("next_page").GetString());
        return [.. json.RootElement.GetProperty("entries").EnumerateArray().Select(e => e.Clone())];
    }

    private static async Task<JsonDocument> GetJsonAsync(HttpClient client, string path)
    {
        using var response = await client.GetAsync(path, Ct);
        var text = await response.Content.ReadAsStringAsync(Ct);
        Assert.True(response.StatusCode == HttpStatusCode.OK, $"{path}: {(int)response.StatusCode} {text}");
        return JsonDocument.Parse(text);
    }

    private static string Severity(JsonElement entry) => entry.GetProperty("record").GetProperty("severity").GetString()!;

    private static DateTimeOffset Timestamp(JsonElement entry) => DateTimeOffset.Parse(entry.GetProperty("timestamp").GetString()!, CultureInfo.InvariantCulture, DateTimeStyles.RoundtripKind);

    private static string Iso(DateTimeOffset time) => Uri.EscapeDataString(time.UtcDateTime.ToString("yyyy-MM-dd'T'HH:mm:ss.fffffff'Z'", CultureInfo.InvariantCulture));
}
