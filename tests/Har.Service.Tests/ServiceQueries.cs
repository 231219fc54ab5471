using System.Globalization;
using System.Net;
using System.Text.Json;
using System.Text.RegularExpressions;

namespace Har.Service.Tests;

/// <summary>Reads the state of a running service the way an operator would: audit queries and <c>/metrics</c>.</summary>
internal static partial class ServiceQueries
{
    /// <summary>Every audit entry (paged through <c>/v1/audit/events</c> with an auditor key), optionally of one event type.</summary>
    public static async Task<List<JsonElement>> AuditEntriesAsync(HttpClient auditor, string? eventType, CancellationToken ct)
    {
        var entries = new List<JsonElement>();
        string? page = null;
        do
        {
            var query = "/v1/audit/events?page_size=1000"
                + (eventType is null ? "" : "&event_type=" + Uri.EscapeDataString(eventType))
                + (page is null ? "" : "&page=" + Uri.EscapeDataString(page));
            using var response = await auditor.GetAsync(query, ct);
            var text = await response.Content.ReadAsStringAsync(ct);
            Assert.True(response.StatusCode == HttpStatusCode.OK, $"audit query {query}: {(int)response.StatusCode} {text}");
            using var json = JsonDocument.Parse(text);
            entries.AddRange(json.RootElement.GetProperty("entries").EnumerateArray().Select(e => e.Clone()));
            page = json.RootElement.GetProperty("next_page").GetString();
        }
        while (page is not null);
        return entries;
    }

    /// <summary>The samples of one metric family in the Prometheus text exposition: label set (as written) → value.</summary>
    public static async Task<Dictionary<string, double>> MetricAsync(HttpClient client, string name, CancellationToken ct)
    {
        var text = await client.GetStringAsync("/metrics", ct);
        var samples = new Dictionary<string, double>(StringComparer.Ordinal);
        foreach (var line in text.Split('\n'))
        {
            var match = Sample().Match(line);
            if (match.Success && match.Groups["name"].Value == name)
            {
                samples[match.Groups["labels"].Value] = double.Parse(match.Groups["value"].Value, CultureInfo.InvariantCulture);
            }
        }

        return samples;
    }

    /// <summary>Polls <paramref name="condition"/> every 250 ms until it holds or <paramref name="timeout"/> passes; returns whether it held.</summary>
    public static async Task<bool> EventuallyAsync(Func<Task<bool>> condition, TimeSpan timeout, CancellationToken ct)
    {
        var deadline = DateTime.UtcNow + timeout;
        while (true)
        {
            if (await condition())
            {
                return true;
            }

            if (DateTime.UtcNow > deadline)
            {
                return false;
            }

            await Task.Delay(250, ct);
        }
    }

    [GeneratedRegex(@"^(?<name>[a-zA-Z_:][a-zA-Z0-9_:]*)(?<labels>\{(?:[^""}]|""(?:[^""\\]|\\.)*"")*\})? (?<value>\S+)", RegexOptions.CultureInvariant)]
    private static partial Regex Sample();
}
