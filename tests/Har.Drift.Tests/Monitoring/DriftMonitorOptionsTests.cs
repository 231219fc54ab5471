using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;
using Prometheus;

namespace Har.Drift.Tests.Monitoring;

/// <summary>
/// The monitors' constructors refuse the options <c>AddHarDrift</c> refuses at start. Found by a user of the package:
/// <c>new DeviceDriftMonitor(profile, options)</c> took <c>WindowLength = 0</c> (every score "Insufficient" forever),
/// <c>-1</c> (an <see cref="OverflowException"/>) and <c>MaxDevices = 0</c> (no device ever monitored) without a word.
/// </summary>
public sealed class DriftMonitorOptionsTests
{
    private static readonly Lazy<ReferenceProfile> Shared = new(() => Synthetic.Profile());

    /// <summary>Each public option out of its range: the option's name, the value as the message shows it, and a piece of the allowed range.</summary>
    public static TheoryData<string, string, string, string> OutOfRange => new()
    {
        { nameof(DriftMonitorOptions.WindowLength), "0", "it is 0", "between 16 and 10000000" },
        { nameof(DriftMonitorOptions.WindowLength), "5", "it is 5", "between 16 and 10000000" },
        { nameof(DriftMonitorOptions.WindowLength), "-1", "it is -1", "between 16 and 10000000" },
        { nameof(DriftMonitorOptions.MaxDevices), "0", "it is 0", "between 1 and 10000000" },
        { nameof(DriftMonitorOptions.MinimumIdleForEviction), "-00:00:01", "it is -00:00:01", "between 00:00:00 and 365.00:00:00" },
        { nameof(DriftMonitorOptions.DeviceIdleTimeout), "00:00:00", "it is 00:00:00", "between 00:00:01 and 365.00:00:00" },
        { nameof(DriftMonitorOptions.ScoreInterval), "00:00:00", "it is 00:00:00", "between 00:00:00.0100000 and 1.00:00:00" },
        { nameof(DriftMonitorOptions.StateSaveInterval), "2.00:00:00", "it is 2.00:00:00", "between 00:00:00 and 1.00:00:00" },
        { nameof(DriftMonitorOptions.MonitorName), "my monitor", "it is 'my monitor'", "regular expression" },
        { nameof(DriftMonitorOptions.MonitorName), "", "it is ''", "required" },
        { "Scoring.Alpha", "0", "it is 0", "between 1E-12 and 0.5" },
        { "Scoring.Alpha", "0.9", "it is 0.9", "between 1E-12 and 0.5" },
        { "Scoring.AccelerometerRange", "0", "it is 0", "between 0.1 and 1000" },
        { "Scoring.GyroscopeRange", "-1", "it is -1", "between 0.1 and 10000" },
        { "Scoring.FalseAlarmsPerTenHours", "-1", "it is -1", "between 0 and 1000" },
    };

    [Theory]
    [MemberData(nameof(OutOfRange))]
    public void DeviceDriftMonitor_OptionOutOfRange_ArgumentExceptionNamingTheOptionItsValueAndTheRange(string option, string value, string shown, string range)
    {
        var options = With(option, value);

        var ex = Assert.ThrowsAny<ArgumentException>(() => new DeviceDriftMonitor(Shared.Value, options));

        AssertNames(ex, option, shown, range);
    }

    [Theory]
    [MemberData(nameof(OutOfRange))]
    public void DriftMonitor_OptionOutOfRange_ArgumentExceptionNamingTheOptionItsValueAndTheRange(string option, string value, string shown, string range)
    {
        var options = With(option, value);

        var ex = Assert.ThrowsAny<ArgumentException>(() => new DriftMonitor(Shared.Value, options));

        AssertNames(ex, option, shown, range);
    }

    [Theory]
    [MemberData(nameof(OutOfRange))]
    public void AddHarDrift_OptionOutOfRange_RefusedAtStartByTheSameRule(string option, string value, string shown, string range)
    {
        _ = shown;
        var services = new ServiceCollection();
        services.AddHarDrift(o => Set(o, option, value));
        using var provider = services.BuildServiceProvider();

        var ex = Assert.Throws<OptionsValidationException>(() => provider.GetRequiredService<IOptions<DriftMonitorOptions>>().Value);

        Assert.Contains($"DriftMonitorOptions.{option}", ex.Message, StringComparison.Ordinal);
        Assert.Contains(range, ex.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("Alpha", "0")]
    [InlineData("AccelerometerRange", "0")]
    [InlineData("FalseAlarmsPerTenHours", "-1")]
    public void DriftScorer_ScoringOptionOutOfRange_ArgumentExceptionNamingIt(string option, string value)
    {
        var options = new DriftScoringOptions();
        Set(options, option, value);

        var ex = Assert.ThrowsAny<ArgumentException>(() => new DriftScorer(Shared.Value, options));

        Assert.Equal("options", ex.ParamName);
        Assert.Contains($"DriftScoringOptions.{option}", ex.Message, StringComparison.Ordinal);
        Assert.Contains($"it is {value}", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void DeviceDriftMonitor_SeveralOptionsOutOfRange_EachNamed()
    {
        var options = new DriftMonitorOptions { WindowLength = 0, MaxDevices = 0, MetricsRegistry = Metrics.NewCustomRegistry() };

        var ex = Assert.ThrowsAny<ArgumentException>(() => new DeviceDriftMonitor(Shared.Value, options));

        Assert.Contains("DriftMonitorOptions.WindowLength must be between 16 and 10000000; it is 0.", ex.Message, StringComparison.Ordinal);
        Assert.Contains("DriftMonitorOptions.MaxDevices must be between 1 and 10000000; it is 0.", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Constructors_SmallestAndLargestAllowedValues_Accepted()
    {
        var options = new DriftMonitorOptions
        {
            WindowLength = 16,
            MaxDevices = 1,
            MinimumIdleForEviction = TimeSpan.Zero,
            StateSaveInterval = TimeSpan.FromDays(1),
            ScoreInterval = TimeSpan.FromMilliseconds(10),
            MetricsRegistry = Metrics.NewCustomRegistry(),
        };

        using var devices = new DeviceDriftMonitor(Shared.Value, options);
        using var single = new DriftMonitor(Shared.Value, options);

        devices.Observe("p", new float[16 * 6], 0, 0, 0.9f, 0.1f);
        Assert.True(devices.IsMonitored("p"));
    }

    private static DriftMonitorOptions With(string option, string value)
    {
        var options = new DriftMonitorOptions { MetricsRegistry = Metrics.NewCustomRegistry() };
        Set(options, option, value);
        return options;
    }

    private static void Set(DriftMonitorOptions options, string option, string value)
    {
        if (option.StartsWith("Scoring.", StringComparison.Ordinal))
        {
            Set(options.Scoring, option["Scoring.".Length..], value);
            return;
        }

        Set((object)options, option, value);
    }

    private static void Set(object options, string option, string value)
    {
        var property = options.GetType().GetProperty(option)!;
        object converted = property.PropertyType == typeof(TimeSpan)
            ? TimeSpan.Parse(value, System.Globalization.CultureInfo.InvariantCulture)
            : property.PropertyType == typeof(string) ? value : Convert.ChangeType(value, property.PropertyType, System.Globalization.CultureInfo.InvariantCulture);
        property.SetValue(options, converted);
    }

    private static void AssertNames(ArgumentException ex, string option, string shown, string range)
    {
        Assert.Equal("options", ex.ParamName);
        Assert.Contains($"DriftMonitorOptions.{option}", ex.Message, StringComparison.Ordinal);
        Assert.Contains(shown, ex.Message, StringComparison.Ordinal);
        Assert.Contains(range, ex.Message, StringComparison.Ordinal);
    }
}
