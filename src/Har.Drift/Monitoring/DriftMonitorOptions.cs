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

    /// <summary>Gets or sets the most devices a <see cref="DeviceDriftMonitor"/> keeps; a new device beyond it evicts the least recently seen one.</summary>
    /// <value>The default value is 1000.</value>
    [Range(1, 10_000_000)]
    public int MaxDevices { get; set; } = 1000;

    /// <summary>Gets or sets how long a device may send nothing before a <see cref="DeviceDriftMonitor"/> evicts it (measured on the time provider).</summary>
    /// <value>The default value is 10 minutes.</value>
    [Range(typeof(TimeSpan), "00:00:01", "365.00:00:00")]
    public TimeSpan DeviceIdleTimeout { get; set; } = TimeSpan.FromMinutes(10);

    /// <summary>Gets or sets how often the monitor re-scores the current window (a <see cref="DeviceDriftMonitor"/>: how often it scores the devices that collected a full window, evicts idle ones and scores the pooled outputs).</summary>
    /// <value>The default value is one minute.</value>
    [Range(typeof(TimeSpan), "00:00:00.010", "1.00:00:00")]
    public TimeSpan ScoreInterval { get; set; } = TimeSpan.FromMinutes(1);

    /// <summary>Gets or sets the scoring options.</summary>
    /// <value>The default value is a default <see cref="DriftScoringOptions"/>.</value>
    [ValidateObjectMembers]
    public DriftScoringOptions Scoring { get; set; } = new();

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
internal sealed partial class DriftMonitorOptionsValidator : IValidateOptions<DriftMonitorOptions>;
