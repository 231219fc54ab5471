using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
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
    public async Task StartScoring_TheHostedServiceStartsTheTimer_DevicesAreScoredWithoutACallOfTheHost()
    {
        // Found from outside: nothing AddHarDrift registered started the device monitor's timer; observed windows were kept
        // and never scored unless the host called Start() itself.
        var time = new Microsoft.Extensions.Time.Testing.FakeTimeProvider();
        var services = new ServiceCollection();
        services.AddSingleton<TimeProvider>(time);
        services.AddSingleton(Monitoring.DriftStateTests.Imu.Value);
        services.AddHarDrift(o =>
        {
            o.WindowLength = 1000;
            o.ScoreInterval = TimeSpan.FromSeconds(10);
            o.OutputWindowLength = 500;
            o.MetricsRegistry = Metrics.NewCustomRegistry();
        }).StartScoring().StartScoring();
        using var sp = services.BuildServiceProvider();
        var scoring = Assert.Single(sp.GetServices<Microsoft.Extensions.Hosting.IHostedService>()); // a second call adds nothing
        await scoring.StartAsync(TestContext.Current.CancellationToken);

        var devices = sp.GetRequiredService<DeviceDriftMonitor>();
        var data = Monitoring.DriftStateTests.Healthy(31);
        devices.Observe("phone-1", data.AsSpan(0, 6 * 1000), 0, 0, 0.9f, 0.3f);
        Assert.Null(devices.GetLatest("phone-1"));

        time.Advance(TimeSpan.FromSeconds(10));
        var clock = System.Diagnostics.Stopwatch.StartNew();
        while (devices.GetLatest("phone-1") is null)
        {
            Assert.True(clock.Elapsed < TimeSpan.FromSeconds(60), "the device was not scored on the timer");
            await Task.Delay(20, TestContext.Current.CancellationToken);
        }

        await scoring.StopAsync(TestContext.Current.CancellationToken);
    }

    [Fact]
    public void AddHarDrift_ConfigurationSection_BindsOptionsAndResolvesTheDeviceMonitor()
    {
        var configuration = new ConfigurationBuilder().AddInMemoryCollection(new Dictionary<string, string?>
        {
            ["HarDrift:WindowLength"] = "1000",
            ["HarDrift:MaxDevices"] = "7",
            ["HarDrift:DeviceIdleTimeout"] = "00:02:00",
            ["HarDrift:Scoring:Alpha"] = "0.01",
            ["HarDrift:MonitorName"] = "from-config",
        }).Build();
        var services = new ServiceCollection();
        services.AddSingleton(Synthetic.Profile()); // a registered profile wins over ProfilePath
        var builder = services.AddHarDrift(configuration.GetSection("HarDrift"));
        services.Configure<DriftMonitorOptions>(o => o.MetricsRegistry = Metrics.NewCustomRegistry());
        using var sp = services.BuildServiceProvider();

        var o = sp.GetRequiredService<IOptions<DriftMonitorOptions>>().Value;
        Assert.Same(services, builder.Services);
        Assert.Equal(1000, o.WindowLength);
        Assert.Equal(7, o.MaxDevices);
        Assert.Equal(TimeSpan.FromMinutes(2), o.DeviceIdleTimeout);
        Assert.Equal(0.01, o.Scoring.Alpha);
        Assert.Equal("from-config", o.MonitorName);
        Assert.Same(sp.GetRequiredService<DeviceDriftMonitor>(), sp.GetRequiredService<DeviceDriftMonitor>());
    }

    [Fact]
    public void AddHarDrift_ConfigurationOutOfRange_FailsValidation()
    {
        var configuration = new ConfigurationBuilder().AddInMemoryCollection(new Dictionary<string, string?> { ["MaxDevices"] = "0" }).Build();
        var services = new ServiceCollection();
        services.AddHarDrift(configuration);
        using var sp = services.BuildServiceProvider();
        var ex = Assert.Throws<OptionsValidationException>(() => sp.GetRequiredService<IOptions<DriftMonitorOptions>>().Value);
        Assert.Contains(ex.Failures, f => f.Contains("MaxDevices", StringComparison.Ordinal));
    }

    [Fact]
    public void AddHarDrift_UserRegistrationFirst_Wins()
    {
        var services = new ServiceCollection();
        var mine = new DriftMonitor(Synthetic.Profile(), new DriftMonitorOptions { WindowLength = 1000, MetricsRegistry = Metrics.NewCustomRegistry() });
        services.TryAddSingleton(mine);
        services.AddHarDrift();
        using var sp = services.BuildServiceProvider();
        Assert.Same(mine, sp.GetRequiredService<DriftMonitor>());
        Assert.Equal("Microsoft.Extensions.DependencyInjection", typeof(HarDriftServiceCollectionExtensions).Namespace);
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
