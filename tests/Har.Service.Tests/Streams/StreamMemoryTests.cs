using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Text.RegularExpressions;

namespace Har.Service.Tests.Streams;

/// <summary>
/// Issue 17, point 5 (service side): at the stream limit a new device gets 503 with Retry-After and problem
/// details (never a 500), and the memory of 10,000 evicted streams goes back to the operating system: the
/// real process, started with the GC settings of <c>deploy/Dockerfile</c>, is back within 10 % of its idle
/// RSS within a minute of the eviction.
/// </summary>
public sealed partial class StreamMemoryTests
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task NewStreamAtTheLimit_Is503WithRetryAfter_ExistingStreamsKeepWorking()
    {
        const int limit = 50;
        await using var service = await ServiceProcess.StartAsync(new Dictionary<string, string>
        {
            ["Har:Service:MaxStreams"] = limit.ToString(CultureInfo.InvariantCulture),
            ["Har:Service:StreamIdleTimeout"] = "01:00:00",
        }, cancellationToken: Ct);
        using var client = service.CreateClient();
        var frame = Frames(ServiceFixture.ChampionCard(service.ModelsDirectory).ChannelCount, 10);

        var statuses = new List<int>();
        for (var i = 0; i < limit + 10; i++)
        {
            using var response = await client.PostAsync($"/v1/streams/device-{i}/samples", ServiceFixture.Bytes(frame, "application/octet-stream"), Ct);
            var status = (int)response.StatusCode;
            statuses.Add(status);
            if (status != 200)
            {
                Assert.Equal(503, status);
                Assert.Equal("application/problem+json", response.Content.Headers.ContentType?.MediaType);
                Assert.True(response.Headers.RetryAfter?.Delta >= TimeSpan.FromSeconds(1), "503 without Retry-After");
                Assert.Contains($"{limit}", await response.Content.ReadAsStringAsync(Ct), StringComparison.Ordinal);
            }
        }

        Assert.Equal(limit, statuses.Count(s => s == 200));
        Assert.Equal(10, statuses.Count(s => s == 503));

        // The streams already buffered are served as before.
        using var existing = await client.PostAsync("/v1/streams/device-0/samples", ServiceFixture.Bytes(frame, "application/octet-stream"), Ct);
        Assert.Equal(HttpStatusCode.OK, existing.StatusCode);
        Assert.False(service.HasExited);
    }

    [Fact]
    public async Task TenThousandEvictedStreams_RssBackWithinTenPercentOfIdleBaseline_WithinAMinute()
    {
        if (!OperatingSystem.IsLinux())
        {
            Assert.Skip("RSS is read from /proc (Linux).");
        }

        const int streams = 10_000;
        await using var service = await ServiceProcess.StartAsync(
            new Dictionary<string, string>
            {
                ["Har:Service:MaxStreams"] = "20000",
                ["Har:Service:StreamIdleTimeout"] = "00:00:45",
                ["Har:Service:RateLimitPerSecond"] = "1000000",
                ["Har:Service:RateLimitBurst"] = "10000000",
                ["Har:Service:AnonymousWindowsPerSecond"] = "1000000",
                ["Har:Service:MaxStreamsPerAnonymousClient"] = "0",
            },
            environment: DockerfileGcSettings(),
            cancellationToken: Ct);
        using var client = service.CreateClient();
        var card = ServiceFixture.ChampionCard(service.ModelsDirectory);

        // Less than a window per append: every stream buffers frames, no inference runs.
        var chunk = Frames(card.ChannelCount, card.WindowLength - 1);

        // The idle timeout (45 s) is longer than the 10,000 appends take even on a loaded machine, so all of them are
        // live at once. Warm-up with the same requests on a few streams (JIT, Kestrel and pool buffers, thread pool), then let them be evicted.
        // The warm-up's 1,000 streams are enough for the service's memory release after their eviction, so the
        // baseline is the idle process after a full collection, not one still holding the warm-up's garbage.
        await AppendAsync(client, streams, i => $"warm-{i % 1000}", chunk);
        Assert.True(await ServiceQueries.EventuallyAsync(async () => await StreamCountAsync(client) == 0 && await ReleasesAsync(client) >= 1, TimeSpan.FromSeconds(120), Ct), "the warm-up streams were not evicted and released");
        var baseline = await SteadyRssAsync(service.ProcessId);

        await AppendAsync(client, streams, i => $"device-{i}", chunk);
        var loaded = Rss(service.ProcessId);
        var live = await StreamCountAsync(client);

        var evicting = Stopwatch.StartNew();
        Assert.True(await ServiceQueries.EventuallyAsync(async () => await StreamCountAsync(client) == 0, TimeSpan.FromSeconds(120), Ct), "the 10,000 streams were not evicted within 120 s");
        var evictedAfter = evicting.Elapsed;

        var afterEviction = Stopwatch.StartNew();
        long rss = Rss(service.ProcessId);
        var back = await ServiceQueries.EventuallyAsync(() => Task.FromResult((rss = Rss(service.ProcessId)) <= baseline * 1.10), TimeSpan.FromSeconds(60), Ct);
        var message = string.Create(CultureInfo.InvariantCulture,
            $"idle baseline {baseline / 1048576.0:F1} MiB; with {live} streams {loaded / 1048576.0:F1} MiB (+{(loaded - baseline) / 1024.0 / streams:F1} KiB per stream); evicted {evictedAfter.TotalSeconds:F1} s after the last append; RSS {rss / 1048576.0:F1} MiB ({100.0 * rss / baseline:F1} % of baseline) {afterEviction.Elapsed.TotalSeconds:F1} s after the eviction");
        TestContext.Current.SendDiagnosticMessage(message);
        Console.WriteLine(message);
        Assert.Equal(streams, live);
        Assert.True(loaded > baseline * 1.10, $"the streams did not measurably raise RSS, so the test proves nothing: {message}");
        Assert.True(back, $"RSS did not come back within 10 % of the idle baseline within 60 s of the eviction: {message}");
    }

    /// <summary>The DOTNET_gc*/DOTNET_GC* variables the container sets (ENV lines of deploy/Dockerfile).</summary>
    internal static Dictionary<string, string> DockerfileGcSettings()
    {
        var dockerfile = File.ReadAllText(Path.Combine(Har.Testing.TestPaths.RepoRoot, "deploy", "Dockerfile"));
        var settings = GcVariable().Matches(dockerfile).ToDictionary(m => m.Groups["name"].Value, m => m.Groups["value"].Value);
        Assert.True(settings.ContainsKey("DOTNET_gcServer"), "deploy/Dockerfile sets no DOTNET_gcServer");
        return settings;
    }

    private static async Task AppendAsync(HttpClient client, int count, Func<int, string> streamId, byte[] chunk)
    {
        await Parallel.ForEachAsync(Enumerable.Range(0, count), new ParallelOptions { MaxDegreeOfParallelism = 8, CancellationToken = Ct }, async (i, ct) =>
        {
            using var response = await client.PostAsync($"/v1/streams/{streamId(i)}/samples", ServiceFixture.Bytes(chunk, "application/octet-stream"), ct);
            Assert.True(response.StatusCode == HttpStatusCode.OK, $"append to {streamId(i)}: {(int)response.StatusCode} {await response.Content.ReadAsStringAsync(ct)}");
        });
    }

    private static async Task<double> ReleasesAsync(HttpClient client) =>
        (await ServiceQueries.MetricAsync(client, "har_service_memory_releases_total", Ct)).Values.Sum();

    private static async Task<double> StreamCountAsync(HttpClient client) =>
        (await ServiceQueries.MetricAsync(client, "har_service_streams", Ct)).Values.Single();

    /// <summary>The median of RSS samples over 3 s (a few allocations of the scrape itself should not make the baseline).</summary>
    internal static async Task<long> SteadyRssAsync(int pid)
    {
        var samples = new List<long>();
        for (var i = 0; i < 7; i++)
        {
            samples.Add(Rss(pid));
            await Task.Delay(500, Ct);
        }

        samples.Sort();
        return samples[samples.Count / 2];
    }

    /// <summary>Resident set size in bytes (VmRSS of /proc/pid/status).</summary>
    internal static long Rss(int pid)
    {
        foreach (var line in File.ReadLines($"/proc/{pid}/status"))
        {
            if (line.StartsWith("VmRSS:", StringComparison.Ordinal))
            {
                return long.Parse(line.AsSpan(6).Trim().TrimEnd("kB").Trim(), CultureInfo.InvariantCulture) * 1024;
            }
        }

        throw new InvalidOperationException($"no VmRSS for process {pid}");
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

    [GeneratedRegex(@"\b(?<name>DOTNET_gc\w+|DOTNET_GC\w+)=(?<value>[^\s\\]+)", RegexOptions.CultureInvariant)]
    private static partial Regex GcVariable();
}
