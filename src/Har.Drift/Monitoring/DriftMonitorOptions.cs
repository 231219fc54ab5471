using System.ComponentModel.DataAnnotations;
using Microsoft.Extensions.Options;
using Prometheus;

namespace Har.Drift;

/// <summary>Options of the streaming <see cref="DriftMonitor"/> and of <c>AddHarDrift</c>.</summary>
public sealed class DriftMonitorOptions
{
    /// <summary>Gets or sets the path of the reference profile JSON loaded by <c>AddHarDrift</c> (ignored when a profile is passed explicitly).</summary>
    /// <value>The default value is <see langword="null"/>.</value>
    public string? ProfilePath { get; set; }

    /// <summary>Gets or sets the length of the current window kept per channel (frames); memory is bounded by it.</summary>
    /// <value>The default value is 3000 (one minute at 50 Hz).</value>
    [Range(16, 10_000_000)]
    public int WindowLength { get; set; } = 3000;

    /// <summary>Gets or sets how often the monitor re-scores the current window.</summary>
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
