using Har.Drift;
using Microsoft.Extensions.Hosting;

namespace Microsoft.Extensions.DependencyInjection;

/// <summary>Starts the registered <see cref="DeviceDriftMonitor"/>'s scoring timer when the host starts (<see cref="HarDriftBuilder.StartScoring"/>); disposing the container stops it and saves its state.</summary>
internal sealed class DriftScoringService(IServiceProvider services) : IHostedService
{
    public Task StartAsync(CancellationToken cancellationToken)
    {
        services.GetRequiredService<DeviceDriftMonitor>().Start();
        return Task.CompletedTask;
    }

    public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;
}
