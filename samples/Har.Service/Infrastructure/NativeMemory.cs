using System.Diagnostics;
using System.Runtime.InteropServices;
using Microsoft.Extensions.Options;
using Prometheus;

namespace Har.Service.Infrastructure;

/// <summary>
/// The native memory ONNX Runtime and the runtime allocate with glibc's malloc (docs/hardening.md, point 54). glibc gives
/// a thread that allocates an arena of its own, up to 8 per core, and keeps the pages freed inside each arena: under a
/// steady soak the service's native memory grew about 1 MiB a minute and was not returned at idle. Every
/// <c>Har:Service:NativeMemoryTrimInterval</c> <c>malloc_trim(0)</c> gives the free pages of every arena back.
/// </summary>
internal static class NativeMemory
{
    /// <summary>Gives the free pages of every malloc arena back to the operating system.</summary>
    /// <returns>Whether any memory was released, or <see langword="null"/> when the C library has no <c>malloc_trim</c> (not glibc).</returns>
    public static bool? Trim()
    {
        try
        {
            return MallocTrim(0) == 1;
        }
        catch (Exception ex) when (ex is DllNotFoundException or EntryPointNotFoundException)
        {
            return null;
        }
    }

    [DllImport("libc", EntryPoint = "malloc_trim")]
    [DefaultDllImportSearchPaths(DllImportSearchPath.SafeDirectories)]
    private static extern int MallocTrim(nuint pad);
}

/// <summary>Runs <see cref="NativeMemory.Trim"/> every <c>Har:Service:NativeMemoryTrimInterval</c> (Linux; off when zero).</summary>
internal sealed class NativeMemoryTrim(IOptions<ServiceOptions> options, TimeProvider time, ILogger<NativeMemoryTrim> logger) : BackgroundService
{
    private static readonly Counter Trims = Metrics.CreateCounter("har_service_native_memory_trims_total", "malloc_trim(0) calls that gave the free pages of glibc's malloc arenas back to the operating system (Har:Service:NativeMemoryTrimInterval).");
    private static readonly Counter TrimSeconds = Metrics.CreateCounter("har_service_native_memory_trim_seconds_total", "Time spent in malloc_trim(0); divided by har_service_native_memory_trims_total, the mean time of one (allocations of the arena being trimmed wait for it).");

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        var interval = options.Value.NativeMemoryTrimInterval;
        if (!OperatingSystem.IsLinux() || interval <= TimeSpan.Zero)
        {
            return;
        }

        Log.NativeMemory(logger, $"the free pages of glibc's malloc arenas are given back every {interval} (Har:Service:NativeMemoryTrimInterval)");
        using var timer = new PeriodicTimer(interval, time);
        try
        {
            while (await timer.WaitForNextTickAsync(stoppingToken))
            {
                var started = Stopwatch.GetTimestamp();
                if (NativeMemory.Trim() is null)
                {
                    Log.NativeMemory(logger, "malloc_trim is not in the C library (not glibc): Har:Service:NativeMemoryTrimInterval has no effect");
                    return;
                }

                Trims.Inc();
                TrimSeconds.Inc(Stopwatch.GetElapsedTime(started).TotalSeconds);
            }
        }
        catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
        {
        }
    }
}
