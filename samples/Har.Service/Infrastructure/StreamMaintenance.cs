using System.Runtime;
using Har.Deployment;
using Microsoft.Extensions.Options;
using Prometheus;

namespace Har.Service.Infrastructure;

/// <summary>
/// Sweeps idle streams on a timer (every quarter of the idle timeout, at most every 15 s), so an idle
/// service does not keep the buffers of streams that went silent, and gives the memory back to the
/// operating system after a mass eviction: once at least <see cref="ReleaseThreshold"/> streams were
/// evicted since the last release (and at most once per <see cref="ReleaseSpacing"/>), one blocking,
/// compacting full collection that decommits the freed segments. The same release follows a flood of
/// prediction request bodies once it is over (<see cref="Security.PredictionBodies.FloodEnded"/>: bodies that held at
/// least an eighth of <c>Har:Service:MaxArrivingBodyBytes</c> at once, a quarter of that peak or less now). Without it an
/// idle process runs no collection at all and its RSS stays at its peak. Publishes the stream table in metrics.
/// </summary>
internal sealed class StreamMaintenance(IServiceProvider services, IOptions<ServiceOptions> options, TimeProvider time, ILogger<StreamMaintenance> logger) : BackgroundService
{
    /// <summary>Evicted streams that trigger a memory release (a tenth of the stream limit, at most 1,000).</summary>
    public int ReleaseThreshold { get; } = Math.Clamp(options.Value.MaxStreams / 10, 1, 1000);

    /// <summary>Least time between two memory releases.</summary>
    public static readonly TimeSpan ReleaseSpacing = TimeSpan.FromSeconds(30);

    private static readonly Gauge Streams = Metrics.CreateGauge("har_service_streams", "Streams buffered by the service's windower.");
    private static readonly Gauge Capacity = Metrics.CreateGauge("har_service_stream_capacity", "Most streams the service buffers at once (Har:Service:MaxStreams).");
    private static readonly Counter Evictions = Metrics.CreateCounter("har_service_stream_evictions_total", "Streams evicted for being idle.");
    private static readonly Counter Releases = Metrics.CreateCounter("har_service_memory_releases_total", "Compacting collections run to give memory back to the operating system, by cause: evicted_streams (a mass eviction of idle streams), request_bodies (a flood of prediction request bodies, once it is over).", new CounterConfiguration { LabelNames = ["cause"] });

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        Capacity.Set(options.Value.MaxStreams);

        // The windower is built from the registry's current model: it exists once the registry can be opened.
        ServingPipeline? windower = null;
        while (windower is null)
        {
            try
            {
                windower = services.GetRequiredService<ServingPipeline>();
            }
            catch (Exception ex) when (ex is IOException or UnauthorizedAccessException or InvalidOperationException)
            {
                Log.StreamsUnavailable(logger, ex);
                await Task.Delay(TimeSpan.FromSeconds(5), time, stoppingToken);
            }
        }

        var quota = services.GetService<Har.Service.Security.StreamQuota>();
        var shares = services.GetService<Har.Service.Security.CapacityShares>();
        var bodies = services.GetService<Har.Service.Security.PredictionBodies>();
        Releases.WithLabels("evicted_streams");
        Releases.WithLabels("request_bodies");
        Metrics.DefaultRegistry.AddBeforeCollectCallback(() => Streams.Set(windower.StreamCount));
        var period = TimeSpan.FromTicks(Math.Min(options.Value.StreamIdleTimeout.Ticks / 4, TimeSpan.FromSeconds(15).Ticks));
        using var timer = new PeriodicTimer(period < TimeSpan.FromMilliseconds(250) ? TimeSpan.FromMilliseconds(250) : period, time);
        long counted = windower.EvictedStreams;
        long sinceRelease = 0;
        var lastRelease = DateTimeOffset.MinValue;
        try
        {
            do
            {
                windower.EvictIdleStreams();
                quota?.Sweep();
                shares?.Sweep();

                // The windower also evicts during appends: count every eviction, whoever made it.
                var evicted = windower.EvictedStreams;
                Evictions.Inc(evicted - counted);
                sinceRelease += evicted - counted;
                counted = evicted;
                Streams.Set(windower.StreamCount);

                var now = time.GetUtcNow();
                if (now - lastRelease >= ReleaseSpacing && (sinceRelease >= ReleaseThreshold || bodies?.FloodEnded == true))
                {
                    // One collection serves both causes; the log says which were due.
                    var peak = bodies?.PeakBytesSinceRelease ?? 0;
                    var flood = bodies?.FloodEnded == true;
                    bodies?.ReleaseMemory();
                    Release(sinceRelease >= ReleaseThreshold ? sinceRelease : 0, flood ? peak : 0);
                    sinceRelease = 0;
                    lastRelease = now;
                }
            }
            while (await timer.WaitForNextTickAsync(stoppingToken));
        }
        catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
        {
        }
    }

    private void Release(long evicted, long bodyPeakBytes)
    {
        var before = GC.GetTotalMemory(forceFullCollection: false);
        GCSettings.LargeObjectHeapCompactionMode = GCLargeObjectHeapCompactionMode.CompactOnce;
        GC.Collect(GC.MaxGeneration, GCCollectionMode.Aggressive, blocking: true, compacting: true);
        var after = GC.GetTotalMemory(forceFullCollection: false);
        if (evicted > 0)
        {
            Releases.WithLabels("evicted_streams").Inc();
            Log.MemoryReleased(logger, evicted, before / (1024 * 1024), after / (1024 * 1024));
        }

        if (bodyPeakBytes > 0)
        {
            Releases.WithLabels("request_bodies").Inc();
            Log.MemoryReleasedAfterBodies(logger, bodyPeakBytes / (1024 * 1024), before / (1024 * 1024), after / (1024 * 1024));
        }
    }
}
