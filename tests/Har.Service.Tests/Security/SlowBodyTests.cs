using System.Net;
using System.Net.Sockets;
using System.Text;

namespace Har.Service.Tests.Security;

/// <summary>
/// Found by hostile-client probes: request bodies dribbled at 300 B/s (just above Kestrel's default minimum, 240 B/s)
/// held an anonymous address's share of prediction requests for about 17 minutes per request, so every other
/// anonymous prediction got 429. The service then cut off bodies slower than <c>MinRequestBodyBytesPerSecond</c>, but
/// at that rate a 4 MiB body still took 17 minutes: 18 appends at 5 KB/s kept an address's (or, with a predictor key,
/// every address's) slots full. Now a prediction body is read in full before its slot, within
/// <c>PredictionBodySeconds</c>, and the bytes arriving at once are bounded per client and in all.
/// </summary>
public sealed class SlowBodyTests
{
    private const string SamplesProgress = "/v1/streams/{streamId}/samples";

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task SlowBodies_HoldNoPredictionSlot_TheClientsOtherRequestsAreServed_AndTheSlowOnesToo()
    {
        // One slot and no queue per client, no minimum data rate: before the change, one body in progress held the
        // client's only slot and the next request was 429.
        await using var service = await ServiceProcess.StartAsync(new Dictionary<string, string>
        {
            ["Har:Service:MaxConcurrentPredictionsPerClient"] = "1",
            ["Har:Service:PredictionQueuePerClient"] = "0",
            ["Har:Service:MinRequestBodyBytesPerSecond"] = "0",
            ["Har:Service:PredictionBodySeconds"] = "600",
        }, cancellationToken: Ct);
        using var client = service.CreateClient();
        var body = Frames(50);
        var slow = new List<TcpClient>();
        try
        {
            for (var i = 0; i < 2; i++)
            {
                slow.Add(await StartBodyAsync(service, $"slow-{i}", body.Length, body.AsMemory(0, body.Length / 2)));
            }

            // Both are past routing, their bodies half sent (bounded wait).
            await WaitForInProgressAsync(client, 2);

            using (var content = new ByteArrayContent(body))
            {
                content.Headers.ContentType = new("application/octet-stream");
                using var response = await client.PostAsync("/v1/streams/fast/samples", content, Ct);
                Assert.True(response.StatusCode == HttpStatusCode.OK, $"the client's own request while two of its bodies arrive: {(int)response.StatusCode} {await response.Content.ReadAsStringAsync(Ct)}");
            }

            // The slow ones, completed, are served too.
            foreach (var tcp in slow)
            {
                await tcp.GetStream().WriteAsync(body.AsMemory(body.Length / 2), Ct);
                var answer = await ReadToEndAsync(tcp);
                Assert.True(answer.StartsWith("HTTP/1.1 200 ", StringComparison.Ordinal), answer);
            }
        }
        finally
        {
            slow.ForEach(t => t.Dispose());
        }
    }

    [Fact]
    public async Task ABodyNotInFullWithinTheDeadline_Is408_TheConnectionCloses_AndTheDetailNamesTheSetting()
    {
        await using var service = await ServiceProcess.StartAsync(new Dictionary<string, string>
        {
            ["Har:Service:MinRequestBodyBytesPerSecond"] = "0",
            ["Har:Service:PredictionBodySeconds"] = "1",
        }, cancellationToken: Ct);
        var body = Frames(50);
        using var tcp = await StartBodyAsync(service, "stalled", body.Length, body.AsMemory(0, 100));

        // Nothing more is sent: the service answers at its deadline and closes (bounded by the read's own timeout).
        var answer = await ReadToEndAsync(tcp);
        Assert.True(answer.StartsWith("HTTP/1.1 408 ", StringComparison.Ordinal), answer);
        Assert.Contains("Connection: close", answer, StringComparison.OrdinalIgnoreCase);
        Assert.Contains("application/problem+json", answer, StringComparison.Ordinal);
        Assert.Contains("Har:Service:PredictionBodySeconds", answer, StringComparison.Ordinal);

        // The metrics count a 408.
        using var metrics = service.CreateClient();
        Assert.Equal(1, (await ServiceQueries.MetricAsync(metrics, "http_requests_received_total", Ct)).Where(kv => kv.Key.Contains("code=\"408\"", StringComparison.Ordinal) && kv.Key.Contains(SamplesProgress, StringComparison.Ordinal)).Sum(kv => kv.Value));

        // The service still serves.
        using var client = service.CreateClient();
        using var content = new ByteArrayContent(body);
        content.Headers.ContentType = new("application/octet-stream");
        using var served = await client.PostAsync("/v1/streams/stalled/samples", content, Ct);
        Assert.Equal(HttpStatusCode.OK, served.StatusCode);

        // Kestrel ended the refused request without an error (found from outside: a read cancelled by its token left the
        // body reader "in progress", and its draining of the rest logged an Error with a stack trace at every 408).
        Assert.DoesNotContain("draining of the request body failed", service.Output, StringComparison.Ordinal);
    }

    [Fact]
    public async Task BytesArriving_AreChargedAsTheyArrive_NotForADeclaredLength_OverTheClientsBudget429_OverTheServices503()
    {
        // One largest body (64 KiB) fills both the client's budget and the service's.
        await using var service = await ServiceProcess.StartAsync(new Dictionary<string, string>
        {
            ["Har:Service:MaxRequestBodyBytes"] = "65536",
            ["Har:Service:MaxArrivingBodyBytesPerClient"] = "65536",
            ["Har:Service:MaxArrivingBodyBytes"] = "65536",
            ["Har:Service:MinRequestBodyBytesPerSecond"] = "0",
            ["Har:Service:PredictionBodySeconds"] = "600",
        }, cancellationToken: Ct);
        using var anonymous = service.CreateClient();
        using var keyed = service.CreateClient(service.PredictorKey);
        var large = Frames(65_536 / 24); // 65,520 bytes
        var small = Frames(50);

        // A body declared as large as both budgets, of which nothing arrived, holds neither (found from outside: budgets
        // charged for declared lengths let connections that sent nothing make every client of a key 429, and from 32
        // addresses every client of the service 503).
        using var declaredOnly = await StartBodyAsync(service, "declared", large.Length, ReadOnlyMemory<byte>.Empty);
        await WaitForInProgressAsync(anonymous, 1);
        using (var response = await PostAsync(anonymous, "/v1/streams/small/samples", small))
        {
            Assert.True(response.StatusCode == HttpStatusCode.OK, $"while a declared body sent nothing: {(int)response.StatusCode} {await response.Content.ReadAsStringAsync(Ct)}");
        }

        // Bytes that arrived are charged: 64,000 of them take a buffer of at least as many bytes, leaving less than a
        // small body's 2 KiB in either budget.
        using var held = await StartBodyAsync(service, "large", large.Length, large.AsMemory(0, 64_000));
        Assert.True(
            await ServiceQueries.EventuallyAsync(async () => (await ServiceQueries.MetricAsync(anonymous, "har_service_arriving_body_bytes", Ct)).Values.Sum() >= 64_000, TimeSpan.FromSeconds(60), Ct),
            "the arriving body's buffer never reached the 64,000 bytes sent");

        // Same client (anonymous, this address): its own budget is spent.
        using (var response = await PostAsync(anonymous, "/v1/streams/small/samples", small))
        {
            await SecurityTests.AssertProblemAsync(response, 429);
            Assert.Contains("Har:Service:MaxArrivingBodyBytesPerClient", await response.Content.ReadAsStringAsync(Ct), StringComparison.Ordinal);
            Assert.True(response.Headers.RetryAfter is not null, "429 without Retry-After");
        }

        // Another client (a key): its own budget is free, the service's is not.
        using (var response = await PostAsync(keyed, "/v1/streams/small/samples", small))
        {
            await SecurityTests.AssertProblemAsync(response, 503);
            Assert.Contains("Har:Service:MaxArrivingBodyBytes", await response.Content.ReadAsStringAsync(Ct), StringComparison.Ordinal);
            Assert.True(response.Headers.RetryAfter is not null, "503 without Retry-After");
        }

        // The large body, completed, is served; then both budgets are free again, and the gauge is back to 0.
        await held.GetStream().WriteAsync(large.AsMemory(64_000), Ct);
        var answer = await ReadToEndAsync(held);
        Assert.True(answer.StartsWith("HTTP/1.1 200 ", StringComparison.Ordinal), answer);
        using (var response = await PostAsync(anonymous, "/v1/streams/small/samples", small))
        {
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        }

        using (var response = await PostAsync(keyed, "/v1/streams/small/samples", small))
        {
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        }

        Assert.Equal(0, (await ServiceQueries.MetricAsync(anonymous, "har_service_arriving_body_bytes", Ct)).Values.Sum());
    }

    [Fact]
    public async Task AClientBudgetBelowTheLargestBody_IsRefusedAtStart_NamingBothSettings()
    {
        var (exit, output) = await ServiceProcess.RunUntilExitAsync(new Dictionary<string, string>
        {
            ["Har:Service:MaxRequestBodyBytes"] = "1048576",
            ["Har:Service:MaxArrivingBodyBytesPerClient"] = "65536",
        }, Ct);
        Assert.True(exit == 2, $"exit code {exit}, expected 2:\n{output}");
        Assert.Contains("MaxArrivingBodyBytesPerClient (65536) is below Har:Service:MaxRequestBodyBytes (1048576)", output, StringComparison.Ordinal);
    }

    /// <summary><paramref name="count"/> frames of six finite float32 values (a device lying still, z up), little-endian.</summary>
    private static byte[] Frames(int count)
    {
        var bytes = new byte[count * 6 * sizeof(float)];
        for (var f = 0; f < count; f++)
        {
            System.Buffers.Binary.BinaryPrimitives.WriteSingleLittleEndian(bytes.AsSpan((f * 6 + 2) * sizeof(float)), 1f);
        }

        return bytes;
    }

    private static async Task<HttpResponseMessage> PostAsync(HttpClient client, string path, byte[] body)
    {
        using var content = new ByteArrayContent(body);
        content.Headers.ContentType = new("application/octet-stream");
        return await client.PostAsync(path, content, Ct);
    }

    /// <summary>A stream append of <paramref name="length"/> bytes whose first bytes only are sent; the connection closes after the answer.</summary>
    private static async Task<TcpClient> StartBodyAsync(ServiceProcess service, string streamId, int length, ReadOnlyMemory<byte> first)
    {
        var tcp = new TcpClient();
        await tcp.ConnectAsync(service.BaseAddress.Host, service.BaseAddress.Port, Ct);
        var head = $"POST /v1/streams/{streamId}/samples HTTP/1.1\r\nHost: {service.BaseAddress.Authority}\r\nContent-Type: application/octet-stream\r\nContent-Length: {length}\r\nConnection: close\r\n\r\n";
        await tcp.GetStream().WriteAsync(Encoding.ASCII.GetBytes(head), Ct);
        await tcp.GetStream().WriteAsync(first, Ct);
        return tcp;
    }

    /// <summary>Everything the server sends until it closes (bounded: 120 s).</summary>
    private static async Task<string> ReadToEndAsync(TcpClient tcp)
    {
        using var bounded = CancellationTokenSource.CreateLinkedTokenSource(Ct);
        bounded.CancelAfter(TimeSpan.FromSeconds(120));
        using var buffer = new MemoryStream();
        try
        {
            await tcp.GetStream().CopyToAsync(buffer, bounded.Token);
        }
        catch (IOException)
        {
            // reset after the answer
        }

        return Encoding.UTF8.GetString(buffer.ToArray());
    }

    /// <summary>Waits (bounded) until the service has at least <paramref name="count"/> stream appends in progress.</summary>
    private static async Task WaitForInProgressAsync(HttpClient client, int count) =>
        Assert.True(
            await ServiceQueries.EventuallyAsync(
                async () => (await ServiceQueries.MetricAsync(client, "http_requests_in_progress", Ct)).Where(kv => kv.Key.Contains(SamplesProgress, StringComparison.Ordinal)).Sum(kv => kv.Value) >= count,
                TimeSpan.FromSeconds(60),
                Ct),
            $"the service never had {count} stream appends in progress");

    [Fact]
    public async Task ABodyDribbledBelowTheMinimumRate_IsCutOff_LongBeforeItCouldComplete()
    {
        await using var service = await ServiceProcess.StartAsync(cancellationToken: Ct);
        using var tcp = new TcpClient();
        await tcp.ConnectAsync(service.BaseAddress.Host, service.BaseAddress.Port, Ct);
        var stream = tcp.GetStream();
        const int length = 307_200; // 1,000 s at 300 B/s
        var head = $"POST /v1/predict HTTP/1.1\r\nHost: {service.BaseAddress.Authority}\r\nContent-Type: application/octet-stream\r\nContent-Length: {length}\r\n\r\n";
        await stream.WriteAsync(Encoding.ASCII.GetBytes(head), Ct);

        // 300 B/s for at most 90 s: the server must end the request (an answer or a closed connection) well before then.
        var sent = 0;
        var ended = false;
        var chunk = new byte[30];
        for (var tick = 0; tick < 900 && !ended; tick++)
        {
            try
            {
                await stream.WriteAsync(chunk, Ct);
                sent += chunk.Length;
                await Task.Delay(100, Ct);
                ended = tcp.Client.Poll(0, SelectMode.SelectRead); // readable: an answer arrived, or the server closed
            }
            catch (IOException)
            {
                ended = true; // reset by the server
            }
        }

        Assert.True(ended, $"the server still read the body after {sent} of {length} bytes");
        Assert.True(sent < length / 10, $"{sent} bytes were sent before the server ended the request");

        // The service answers it itself, so the response, the logs and the metrics say 408 (found from outside: Kestrel's
        // refusal escaped as an exception, answered without a problem body and counted as a 200).
        var answer = await ReadToEndAsync(tcp);
        Assert.True(answer.StartsWith("HTTP/1.1 408 ", StringComparison.Ordinal), answer);
        Assert.Contains("application/problem+json", answer, StringComparison.Ordinal);
        using var client = service.CreateClient();
        var received = (await ServiceQueries.MetricAsync(client, "http_requests_received_total", Ct)).Where(kv => kv.Key.Contains("endpoint=\"/v1/predict\"", StringComparison.Ordinal) && kv.Value > 0).ToList();
        Assert.Equal("408", Assert.Single(received).Key.Split("code=\"")[1].Split('"')[0]);
    }
}
