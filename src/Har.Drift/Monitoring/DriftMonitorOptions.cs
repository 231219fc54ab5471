using System.ComponentModel.DataAnnotations;
using Microsoft.Extensions.Options;
using Prometheus;

namespace Har.Drift;

/// <summary>Options of the streaming monitors (<see cref="DriftMonitor"/>, <see cref="DeviceDriftMonitor"/>) and of <c>AddHarDrift</c>.</summary>
public sealed class DriftMonitorOptions
{
    /// <summary>Gets or sets the path of the reference profile JSON loaded by <c>AddHarDrift</c> (ignored when a profile is passed explicitly).</summary>
    /// <value>The default value is <see langword="null"/>.</value>
    public string? ProfilePath { get; set; }

    /// <summary>
    /// Gets or sets the length of the current window kept per stream or device (frames); memory is bounded by it
    /// (WindowLength × channels × 4 bytes per device). Use the profile's <see cref="ReferenceProfile.SegmentLength"/>:
    /// the effect-size floors are calibrated on windows of that length. A <see cref="DeviceDriftMonitor"/> scores a
    /// device each time it has collected this many new frames.
    /// </summary>
    /// <value>The default value is 3000 (one minute at 50 Hz).</value>
    [Range(16, 10_000_000)]
    public int WindowLength { get; set; } = 3000;

    /// <summary>Gets or sets how many of the latest predictions are kept for output drift (per <see cref="DriftMonitor"/>; pooled over all devices of a <see cref="DeviceDriftMonitor"/>).</summary>
    /// <value>The default value is 1000.</value>
    internal int OutputWindowLength { get; set; } = 1000;

    /// <summary>
    /// Gets or sets the most devices a <see cref="DeviceDriftMonitor"/> keeps. A new device beyond it first evicts devices
    /// idle for <see cref="DeviceIdleTimeout"/>, then takes the monitor of the least recently seen device silent for
    /// <see cref="MinimumIdleForEviction"/> whose alarm is not raised; when there is none, the new device is not monitored
    /// (until a monitor frees) and its predictions are counted in <c>har_drift_unmonitored_observations_total</c>.
    /// Memory per device: <see cref="WindowLength"/> × (channels × 4 + 8) bytes plus a bounded history (about 100 KB at the defaults).
    /// </summary>
    /// <value>The default value is 1000.</value>
    [Range(1, 10_000_000)]
    public int MaxDevices { get; set; } = 1000;

    /// <summary>
    /// Gets or sets how long the least recently seen device must have sent nothing before a new device may take its monitor
    /// at <see cref="MaxDevices"/> (a <see cref="DeviceDriftMonitor"/>; measured on the time provider). A device that keeps
    /// streaming keeps its monitor, so the devices monitored stay the same while more than <see cref="MaxDevices"/> stream,
    /// and each collects its whole windows. <see cref="TimeSpan.Zero"/> lets a new device take the least recently seen
    /// device's monitor whatever its age: with more devices streaming than <see cref="MaxDevices"/>, they then take turns and
    /// none may collect a whole window. A device whose alarm is raised never loses its monitor to a new device.
    /// </summary>
    /// <value>The default value is one minute.</value>
    [Range(typeof(TimeSpan), "00:00:00", "365.00:00:00")]
    public TimeSpan MinimumIdleForEviction { get; set; } = TimeSpan.FromMinutes(1);

    /// <summary>Gets or sets how long a device may send nothing before a <see cref="DeviceDriftMonitor"/> evicts it (measured on the time provider).</summary>
    /// <value>The default value is 10 minutes.</value>
    [Range(typeof(TimeSpan), "00:00:01", "365.00:00:00")]
    public TimeSpan DeviceIdleTimeout { get; set; } = TimeSpan.FromMinutes(10);

    /// <summary>Gets or sets how often the monitor looks for a window to score: a <see cref="DriftMonitor"/> scores its current window when half a window of new frames arrived since its last scoring; a <see cref="DeviceDriftMonitor"/> scores each device that did (once it has a whole window), evicts idle ones and scores the pooled outputs.</summary>
    /// <value>The default value is one minute.</value>
    [Range(typeof(TimeSpan), "00:00:00.010", "1.00:00:00")]
    public TimeSpan ScoreInterval { get; set; } = TimeSpan.FromMinutes(1);

    /// <summary>Gets or sets the scoring options.</summary>
    /// <value>The default value is a default <see cref="DriftScoringOptions"/>.</value>
    [ValidateObjectMembers]
    public DriftScoringOptions Scoring { get; set; } = new();

    /// <summary>
    /// Gets or sets the file in which a <see cref="DeviceDriftMonitor"/> keeps every device's drift state across restarts:
    /// each device's history (turns, still postures, its own earlier minutes), its alarm (statistics and the cause of a
    /// raised alarm) and its latest report. The monitor restores it at construction and replaces it atomically (temp file,
    /// fsync, rename, directory fsync) at the end of a scoring tick in which an alarm was raised, lowered or changed its
    /// cause, at least every <see cref="StateSaveInterval"/> while anything changed, and at dispose: a crash loses no alarm
    /// change but that of the tick it interrupted, and at most <see cref="StateSaveInterval"/> of evidence. The file holds up to
    /// about 250 KB a device once its history is full, and its replacement needs as much again. A file that is damaged, truncated or of another format is
    /// logged, renamed <c>.bad</c>, and the monitor starts empty; one saved against another reference profile is renamed
    /// <c>.profile-{its hash}</c>. The frames of each device's current window are not kept: a device is scored again once
    /// a whole new window has arrived. Give each process its own file; for state that follows a device from one process to
    /// another, use <see cref="StateStore"/> instead (not both). Ignored by <see cref="DriftMonitor"/>. A path no save could
    /// write (its folder cannot be created or written, or it is a folder) is refused at construction with an
    /// <see cref="IOException"/>; a save that fails later is logged and retried, and its error is in
    /// <see cref="DeviceDriftMonitor.StateSaveError"/>.
    /// </summary>
    /// <value>The default value is <see langword="null"/>: the state lives in memory only.</value>
    public string? StatePath { get; set; }

    /// <summary>
    /// Gets or sets where a <see cref="DeviceDriftMonitor"/> keeps each device's drift state (the same state as
    /// <see cref="StatePath"/>), one record a device, for a fleet in which a device may move from one process to another: a
    /// device seen for the first time in the process is loaded from the store at the next scoring tick and scored only
    /// after it, so its raised alarm and its own earlier minutes follow it. Each device is saved on its own: at the end of
    /// the tick in which its alarm was raised, lowered or changed its cause, about every <see cref="StateSaveInterval"/>
    /// while it changes, when it is evicted or removed, and at dispose. Devices that fall due together (all of them, after a
    /// restart) are spread over the following ticks: a tick saves at most twice its share of the live devices for the
    /// interval (1,000 devices, a 30 s <see cref="ScoreInterval"/>, 5 min: 200), the longest waiting first; a full history
    /// costs about 10 ms to upsert into PostgreSQL and 260 KB of WAL (benchmarks/results/Fleet). Not with <see cref="StatePath"/>. Ignored by
    /// <see cref="DriftMonitor"/>.
    /// </summary>
    /// <value>The default value is <see langword="null"/>: no store.</value>
    public DriftStateStore? StateStore { get; set; }

    /// <summary>
    /// Gets or sets how often the state in <see cref="StatePath"/> is rewritten while devices are scored and no alarm changes
    /// (an alarm raised, lowered or naming another cause is saved at the end of its tick); with a <see cref="StateStore"/>,
    /// how often each changed device is saved. Each save rewrites the whole
    /// file: with 1,000 devices whose histories are full, about 240 MB in about half a second on a 2-core VM
    /// (benchmarks/results/Drift); zero saves at the end of every scoring tick.
    /// </summary>
    /// <value>The default value is 5 minutes.</value>
    [Range(typeof(TimeSpan), "00:00:00", "1.00:00:00", ErrorMessage = "DriftMonitorOptions.StateSaveInterval must be between 0 and 1 day.")]
    public TimeSpan StateSaveInterval { get; set; } = TimeSpan.FromMinutes(5);

    /// <summary>Gets or sets the Prometheus registry the metrics are registered in.</summary>
    /// <value>The default value is <see langword="null"/> (<see cref="Metrics.DefaultRegistry"/>).</value>
    public CollectorRegistry? MetricsRegistry { get; set; }

    /// <summary>Gets or sets a label value identifying the monitored model/stream in the metrics (keep cardinality bounded).</summary>
    /// <value>The default value is <c>default</c>.</value>
    [Required]
    [RegularExpression("^[A-Za-z0-9_.:-]{1,64}$")]
    public string MonitorName { get; set; } = "default";
}

/// <summary>Source-generated validation of <see cref="DriftMonitorOptions"/>.</summary>
[OptionsValidator]
internal sealed partial class DriftMonitorOptionsValidator : IValidateOptions<DriftMonitorOptions>
{
    /// <summary>
    /// Refuses options given to a monitor's constructor by the rules <c>AddHarDrift</c> validates at start (the attributes
    /// above and <see cref="DriftStateOptionsValidator"/>): without it, <c>WindowLength = 0</c> scored nothing forever,
    /// <c>-1</c> threw an <see cref="OverflowException"/> and <c>MaxDevices = 0</c> monitored no device, all silently.
    /// </summary>
    /// <exception cref="ArgumentException">An option is out of its range; the message names it, its value and what is allowed.</exception>
    public static void ThrowIfInvalid(DriftMonitorOptions options, string paramName)
    {
        OptionsGuard.ThrowIfInvalid(new DriftMonitorOptionsValidator(), options, paramName);
        if (DriftStateOptionsValidator.StateConflict(options) is { } conflict)
        {
            throw new ArgumentException(conflict, paramName);
        }
    }
}

/// <summary>Checks what the attributes cannot: <see cref="DriftMonitorOptions.StatePath"/> and <see cref="DriftMonitorOptions.StateStore"/> are not both set.</summary>
internal sealed class DriftStateOptionsValidator : IValidateOptions<DriftMonitorOptions>
{
    public ValidateOptionsResult Validate(string? name, DriftMonitorOptions options) =>
        StateConflict(options) is { } error ? ValidateOptionsResult.Fail(error) : ValidateOptionsResult.Success;

    /// <summary>Gets the error when both the file and the store are set, or null.</summary>
    public static string? StateConflict(DriftMonitorOptions options) =>
        options.StatePath is { Length: > 0 } && options.StateStore is not null
            ? $"DriftMonitorOptions.StatePath ('{options.StatePath}') and DriftMonitorOptions.StateStore ({options.StateStore.GetType().Name}) are both set; the drift state lives in one place: set StatePath for one process, or StateStore for a fleet, not both."
            : null;
}

/// <summary>Runs an options validator of this package on options given to a constructor, the one <c>AddHarDrift</c> runs at start.</summary>
internal static class OptionsGuard
{
    /// <summary>Throws when <paramref name="validator"/> fails <paramref name="options"/>, with each failure and the value it failed on.</summary>
    /// <exception cref="ArgumentException">The options fail validation.</exception>
    public static void ThrowIfInvalid<T>(IValidateOptions<T> validator, T options, string paramName)
        where T : class
    {
        var result = validator.Validate(null, options);
        if (!result.Failed)
        {
            return;
        }

        var failures = result.Failures ?? [result.FailureMessage];
        throw new ArgumentException(string.Join(" ", failures.Select(f => WithValue(options, f))), paramName);
    }

    /// <summary>
    /// A generated validator's failure ("WindowLength: The field DriftMonitorOptions.WindowLength must be between 16 and
    /// 10000000.") as its message with the value that failed ("…; it is 0."). The message names the option by its path
    /// from the options type ("DriftMonitorOptions.Scoring.Alpha"), a nested one too, where the prefix is the member alone.
    /// </summary>
    private static string WithValue(object options, string failure)
    {
        var colon = failure.IndexOf(": ", StringComparison.Ordinal);
        if (colon <= 0)
        {
            return failure;
        }

        var message = failure[(colon + 2)..];
        var type = options.GetType().Name;
        var match = System.Text.RegularExpressions.Regex.Match(message, $@"\b{type}\.([A-Za-z_][A-Za-z0-9_.]*[A-Za-z0-9_])");
        if (!match.Success)
        {
            return failure;
        }

        object? value = options;
        foreach (var name in match.Groups[1].Value.Split('.'))
        {
            if (value?.GetType().GetProperty(name) is not { } property)
            {
                return failure;
            }

            value = property.GetValue(value);
        }

        var text = value switch
        {
            null => "null",
            string s => $"'{s}'",
            IFormattable f => f.ToString(null, System.Globalization.CultureInfo.InvariantCulture),
            _ => value.ToString(),
        };
        return $"{message.TrimEnd('.')}; it is {text}.";
    }
}
