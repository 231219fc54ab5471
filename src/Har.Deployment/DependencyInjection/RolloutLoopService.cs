using Har.Deployment;
using Log = Har.Deployment.Log;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace Microsoft.Extensions.DependencyInjection;

/// <summary>
/// Runs <see cref="RolloutController.RunAsync"/> for the host's lifetime (<see cref="HarDeploymentBuilder.RunRolloutLoop"/>).
/// The controller is resolved once the host has started, so opening it (the state file, the resident models) does not
/// hold up the start; an open that fails (an audit log that cannot be written yet) is logged and retried every
/// <see cref="RolloutControllerOptions.FaultRetryInterval"/>.
/// </summary>
internal sealed class RolloutLoopService(IServiceProvider services, IOptions<HarDeploymentOptions> options, ILogger<RolloutLoopService>? logger = null) : BackgroundService
{
    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        var time = services.GetService<TimeProvider>() ?? TimeProvider.System;
        await Task.Yield(); // off the host's start
        while (!stoppingToken.IsCancellationRequested)
        {
            RolloutController controller;
            try
            {
                controller = services.GetRequiredService<RolloutController>();
            }
            catch (Exception ex) when (ex is not OperationCanceledException && !stoppingToken.IsCancellationRequested)
            {
                var retry = options.Value.Rollouts.FaultRetryInterval;
                Log.RolloutLoopCannotOpen(logger ?? (ILogger)Microsoft.Extensions.Logging.Abstractions.NullLogger.Instance, retry.TotalSeconds, ex);
                await Task.Delay(retry, time, stoppingToken).ConfigureAwait(false);
                continue;
            }

            await controller.RunAsync(stoppingToken).ConfigureAwait(false);
            return;
        }
    }
}
