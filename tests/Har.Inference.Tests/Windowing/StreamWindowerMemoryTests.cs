using Har.Inference.Tests.Models;
using Microsoft.Extensions.Time.Testing;

namespace Har.Inference.Tests.Windowing;

/// <summary>Measured with the GC (process-wide): alone in its collection, so no other test allocates meanwhile.</summary>
[Collection(nameof(ProcessWideMeasurements))]
public sealed class StreamWindowerMemoryTests
{
    [Fact]
    public void IdleStreams_OfTheBundledGeometry_RetainAboutSixKilobytesEach()
    {
        // 2000 devices with the bundled models' geometry (200 × 100 × 6) send 4.4 s each, then fall silent.
        const int streams = 2000;
        var time = new FakeTimeProvider();
        var ids = Enumerable.Range(0, streams).Select(i => $"device-{i:D5}").ToArray();
        var chunk = Fixture.Frames(55);
        var baseline = GC.GetTotalMemory(forceFullCollection: true);

        using var windower = new StreamWindower(200, 100, 6, new StreamWindowerOptions { IdleTimeout = TimeSpan.FromMinutes(5) }, time);
        foreach (var id in ids)
        {
            for (var k = 0; k < 4; k++)
            {
                windower.Append(id, chunk);
            }
        }

        var active = (GC.GetTotalMemory(forceFullCollection: true) - baseline) / (double)streams;
        time.Advance(TimeSpan.FromSeconds(30)); // silent for a sweep period: trimmed by the timer
        var idle = (GC.GetTotalMemory(forceFullCollection: true) - baseline) / (double)streams;

        Assert.Equal(streams, windower.StreamCount);
        Assert.True(active > 19_000, $"an active stream measured {active:F0} bytes; expected its four-window buffer (19 200 bytes) and more");
        Assert.True(idle < 6_200, $"an idle stream measured {idle:F0} bytes; expected at most about 6 KB (one window of 4800 bytes, its id and bookkeeping)");
        GC.KeepAlive(ids);
    }
}
