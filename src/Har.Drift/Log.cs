using Microsoft.Extensions.Logging;

namespace Har.Drift;

/// <summary>Source-generated log messages of Har.Drift.</summary>
internal static partial class Log
{
    [LoggerMessage(EventId = 4001, Level = LogLevel.Warning, Message = "Drift monitor {Monitor}: channel {Channel} drifted (KS D {D:F3}, PSI {Psi:F3}, n_eff {NEff:F0})")]
    public static partial void ChannelDrifted(ILogger logger, string monitor, string channel, double d, double psi, double nEff);

    [LoggerMessage(EventId = 4002, Level = LogLevel.Warning, Message = "Drift monitor {Monitor}: sensor finding {Kind}: {Detail}")]
    public static partial void SensorFinding(ILogger logger, string monitor, SensorFindingKind kind, string detail);

    [LoggerMessage(EventId = 4003, Level = LogLevel.Warning, Message = "Drift monitor {Monitor}, device {Device}: channel {Channel} drifted (KS D {D:F3}, PSI {Psi:F3}, n_eff {NEff:F0})")]
    public static partial void DeviceChannelDrifted(ILogger logger, string monitor, string device, string channel, double d, double psi, double nEff);

    [LoggerMessage(EventId = 4004, Level = LogLevel.Warning, Message = "Drift monitor {Monitor}, device {Device}: sensor finding {Kind}: {Detail}")]
    public static partial void DeviceSensorFinding(ILogger logger, string monitor, string device, SensorFindingKind kind, string detail);

    [LoggerMessage(EventId = 4005, Level = LogLevel.Warning, Message = "Drift monitor {Monitor}: model outputs drifted: {Summary}")]
    public static partial void OutputsDrifted(ILogger logger, string monitor, OutputVerdict summary);

    [LoggerMessage(EventId = 4006, Level = LogLevel.Information, Message = "Drift monitor {Monitor}: device {Device} evicted ({Reason})")]
    public static partial void DeviceEvicted(ILogger logger, string monitor, string device, string reason);

    [LoggerMessage(EventId = 4008, Level = LogLevel.Warning, Message = "Drift monitor {Monitor}: the previous scoring was still running when the next was due (interval {Interval}); this one is left to it, so no window is scored twice")]
    public static partial void TickSkipped(ILogger logger, string monitor, TimeSpan interval);

    [LoggerMessage(EventId = 4007, Level = LogLevel.Warning, Message = "Drift monitor {Monitor}: {Predictions} predictions of devices not monitored since the last scoring: all {Capacity} device monitors are held by devices seen within {MinimumIdle} or with a raised alarm (DriftMonitorOptions.MaxDevices, MinimumIdleForEviction)")]
    public static partial void DevicesUnmonitored(ILogger logger, string monitor, long predictions, int capacity, TimeSpan minimumIdle);
}

/// <summary>Logs what a report found.</summary>
internal static class MonitorLog
{
    public static void Report(ILogger logger, string monitor, DriftReport report)
    {
        if (!logger.IsEnabled(LogLevel.Warning))
        {
            return;
        }

        foreach (var c in report.Channels)
        {
            if (c.Verdict == DriftVerdict.Drifted)
            {
                if (report.Device is { } d)
                {
                    Log.DeviceChannelDrifted(logger, monitor, d, c.Channel, c.Ks?.Statistic ?? 0, c.Psi?.Statistic ?? 0, c.EffectiveN);
                }
                else
                {
                    Log.ChannelDrifted(logger, monitor, c.Channel, c.Ks?.Statistic ?? 0, c.Psi?.Statistic ?? 0, c.EffectiveN);
                }
            }
        }

        foreach (var f in report.Findings)
        {
            if (report.Device is { } d)
            {
                Log.DeviceSensorFinding(logger, monitor, d, f.Kind, f.Message);
            }
            else
            {
                Log.SensorFinding(logger, monitor, f.Kind, f.Message);
            }
        }

        if (report.Outputs is { Verdict: DriftVerdict.Drifted } o)
        {
            Log.OutputsDrifted(logger, monitor, o);
        }
    }
}
