using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;
using Prometheus;

namespace Har.Drift.Tests.DependencyInjection;

public sealed class HarDriftServiceCollectionExtensionsTests
{
    [Fact]
    public void AddHarDrift_WithProfilePath_ResolvesMonitor()
    {
        var path = Path.Combine(Path.GetTempPath(), $"har-drift-di-{Guid.NewGuid():N}.json");
        Synthetic.Profile().Save(path);
        try
        {
            var services = new ServiceCollection();
            services.AddHarDrift(o =>
            {
                o.ProfilePath = path;
                o.WindowLength = 1000;
                o.MetricsRegistry = Metrics.NewCustomRegistry();
            });
            using var sp = services.BuildServiceProvider();
            var monitor = sp.GetRequiredService<DriftMonitor>();
            Assert.Same(monitor, sp.GetRequiredService<DriftMonitor>());
            Assert.Equal(6, sp.GetRequiredService<ReferenceProfile>().Channels.Count);
        }
        finally
        {
            File.Delete(path);
        }
    }

    [Fact]
    public void AddHarDrift_InvalidOptions_FailsValidation()
    {
        var services = new ServiceCollection();
        services.AddHarDrift(o =>
        {
            o.WindowLength = 3;
            o.Scoring.Alpha = 2;
            o.MonitorName = "bad name with spaces";
        });
        using var sp = services.BuildServiceProvider();
        var ex = Assert.Throws<OptionsValidationException>(() => sp.GetRequiredService<IOptions<DriftMonitorOptions>>().Value);
        Assert.Contains(ex.Failures, f => f.Contains("WindowLength", StringComparison.Ordinal));
        Assert.Contains(ex.Failures, f => f.Contains("Alpha", StringComparison.Ordinal));
        Assert.Contains(ex.Failures, f => f.Contains("MonitorName", StringComparison.Ordinal));
    }

    [Fact]
    public void AddHarDrift_NoProfile_ExplainsWhatToSet()
    {
        var services = new ServiceCollection();
        services.AddHarDrift(o => o.MetricsRegistry = Metrics.NewCustomRegistry());
        using var sp = services.BuildServiceProvider();
        var ex = Assert.Throws<InvalidOperationException>(() => sp.GetRequiredService<ReferenceProfile>());
        Assert.Contains("ProfilePath", ex.Message, StringComparison.Ordinal);
    }
}
