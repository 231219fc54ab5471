using System.Net;
using System.Net.Http.Json;
using System.Text.Json;

namespace Har.Service.Tests.Audit;

/// <summary>
/// Found from outside: <c>GET /v1/audit/events?page_size=1000</c> put up to 1,000 records of up to 1 MiB each into one
/// answer built in memory (101 MB for 100 large records); a dozen concurrent queries exhausted the heap (500
/// OutOfMemoryException). A page now also ends once it holds 8 MiB of records, with next_page where it stopped.
/// </summary>
public sealed class AuditPageBytesTests
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task LargeRecords_APageStopsAtItsByteBound_AndThePagesTogetherHoldEveryEntryOnce()
    {
        await using var service = await ServiceProcess.StartAsync(cancellationToken: Ct);
        using var op = service.CreateClient(service.OperatorKey);
        using var auditor = service.CreateClient(service.AuditorKey);
        var blob = new string('b', 900_000);
        var appended = new List<long>();
        for (var i = 0; i < 14; i++)
        {
            using var response = await op.PostAsJsonAsync("/v1/audit/events", new { event_type = "ops.large", entity_type = "test", entity_id = $"n{i}", severity = "info", action_details = new { blob } }, Ct);
            Assert.Equal(HttpStatusCode.Created, response.StatusCode);
            appended.Add((await response.Content.ReadFromJsonAsync<JsonElement>(Ct)).GetProperty("index").GetInt64());
        }

        var pages = new List<List<long>>();
        string? page = null;
        do
        {
            var url = "/v1/audit/events?event_type=ops.large&page_size=1000" + (page is null ? string.Empty : "&page=" + page);
            using var json = JsonDocument.Parse(await auditor.GetStringAsync(url, Ct));
            pages.Add([.. json.RootElement.GetProperty("entries").EnumerateArray().Select(e => e.GetProperty("index").GetInt64())]);
            page = json.RootElement.GetProperty("next_page").GetString();
        }
        while (page is not null && pages.Count < 10);

        Assert.True(pages.Count >= 2, $"one page held all {pages[0].Count} records of 900 KB");
        Assert.All(pages, p => Assert.InRange(p.Count, 1, 10)); // 8 MiB of 900 KB records: at most 10 a page
        Assert.Equal(appended, pages.SelectMany(p => p));
    }
}
