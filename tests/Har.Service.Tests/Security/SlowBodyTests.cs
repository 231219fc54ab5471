using System.Net.Sockets;
using System.Text;

namespace Har.Service.Tests.Security;

/// <summary>
/// Found by a hostile-client probe: request bodies dribbled at 300 B/s (just above Kestrel's default minimum, 240 B/s)
/// held an anonymous address's share of prediction requests for about 17 minutes per request, so every other
/// anonymous prediction got 429. The service now cuts off bodies slower than <c>MinRequestBodyBytesPerSecond</c>.
/// </summary>
public sealed class SlowBodyTests
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

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
    }
}
