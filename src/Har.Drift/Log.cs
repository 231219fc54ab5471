using Microsoft.Extensions.Logging;

namespace Har.Drift;

/// <summary>Source-generated log messages of Har.Drift.</summary>
internal static partial class Log
{
    [LoggerMessage(EventId = 4001, Level = LogLevel.Warning, Message = "Drift monitor {Monitor}: channel {Channel} drifted (KS D {D:F3}, PSI {Psi:F3}, n_eff {NEff:F0})")]
    public static partial void ChannelDrifted(ILogger logger, string monitor, string channel, double d, double psi, double nEff);

    [LoggerMessage(EventId = 4002, Level = LogLevel.Warning, Message = "Drift monitor {Monitor}: sensor finding {Kind}: {Detail}")]
    public static partial void SensorFinding(ILogger logger, string monitor, SensorFindingKind kind, string detail);

    [LoggerMessage(EventId = 4003, Level = LogLevel.Debug, Message = "Drift monitor {Monitor}, device {Device}: channel {Channel} drifted (KS D {D:F3}, PSI {Psi:F3}, n_eff {NEff:F0})")]
    public static partial void DeviceChannelDrifted(ILogger logger, string monitor, string device, string channel, double d, double psi, double nEff);

    [LoggerMessage(EventId = 4004, Level = LogLevel.Debug, Message = "Drift monitor {Monitor}, device {Device}: sensor finding {Kind}: {Detail}")]
    public static partial void DeviceSensorFinding(ILogger logger, string monitor, string device, SensorFindingKind kind, string detail);

    [LoggerMessage(EventId = 4005, Level = LogLevel.Warning, Message = "Drift monitor {Monitor}: model outputs drifted: {Summary}")]
    public static partial void OutputsDrifted(ILogger logger, string monitor, OutputVerdict summary);

    [LoggerMessage(EventId = 4006, Level = LogLevel.Debug, Message = "Drift monitor {Monitor}: device {Device} evicted ({Reason})")]
    public static partial void DeviceEvicted(ILogger logger, string monitor, string device, string reason);

    [LoggerMessage(EventId = 4008, Level = LogLevel.Warning, Message = "Drift monitor {Monitor}: the previous scoring was still running when the next was due (interval {Interval}); this one is left to it, so no window is scored twice")]
    public static partial void TickSkipped(ILogger logger, string monitor, TimeSpan interval);

    [LoggerMessage(EventId = 4007, Level = LogLevel.Warning, Message = "Drift monitor {Monitor}: {Predictions} predictions of devices not monitored since the last scoring: all {Capacity} device monitors are held by devices seen within {MinimumIdle} or with a raised alarm (DriftMonitorOptions.MaxDevices, MinimumIdleForEviction)")]
    public static partial void DevicesUnmonitored(ILogger logger, string monitor, long predictions, int capacity, TimeSpan minimumIdle);

    [LoggerMessage(EventId = 4009, Level = LogLevel.Information, Message = "Drift monitor {Monitor}: restored {Devices} devices from {Path}, saved {SinceSave} ago ({Dropped} more left out: at most {Capacity} devices, DriftMonitorOptions.MaxDevices)")]
    public static partial void StateRestored(ILogger logger, string monitor, int devices, string path, TimeSpan sinceSave, int dropped, int capacity);

    [LoggerMessage(EventId = 4010, Level = LogLevel.Warning, Message = "Drift monitor {Monitor}: the drift state file {Path} cannot be used ({Reason}); every device starts fresh. The file was kept as {Aside}")]
    public static partial void StateUnreadable(ILogger logger, Exception exception, string monitor, string path, string reason, string aside);

    [LoggerMessage(EventId = 4011, Level = LogLevel.Warning, Message = "Drift monitor {Monitor}: the drift state file {Path} was saved against reference profile {SavedProfile}, not the current {CurrentProfile}: its thresholds and evidence do not apply, so every device starts fresh. The file was kept as {Aside}")]
    public static partial void StateOtherProfile(ILogger logger, string monitor, string path, string savedProfile, string currentProfile, string aside);

    [LoggerMessage(EventId = 4012, Level = LogLevel.Debug, Message = "Drift monitor {Monitor}: saved {Devices} devices to {Path} in {Elapsed}")]
    public static partial void StateSaved(ILogger logger, string monitor, int devices, string path, TimeSpan elapsed);

    [LoggerMessage(EventId = 4020, Level = LogLevel.Information, Message = "Drift monitor {Monitor}: applied {Records} records of the journal {Path} (alarm changes since the state file was written; torn at its end by a crash: {Torn})")]
    public static partial void StateJournalApplied(ILogger logger, string monitor, int records, string path, bool torn);

    [LoggerMessage(EventId = 4021, Level = LogLevel.Warning, Message = "Drift monitor {Monitor}: its windows of {WindowLength} frames (DriftMonitorOptions.WindowLength) are shorter than the reference profile's {SegmentLength}, on which the floors and the alarm thresholds are calibrated: no window is used for the alarm, so no device can raise one; set WindowLength to the profile's SegmentLength")]
    public static partial void WindowShorterThanProfile(ILogger logger, string monitor, int windowLength, int segmentLength);

    [LoggerMessage(EventId = 4021, Level = LogLevel.Warning, Message = "Drift monitor {Monitor}, device {Device}: drift alarm raised: {Alarm}")]
    public static partial void DeviceAlarmRaised(ILogger logger, string monitor, string device, DriftAlarm alarm);

    [LoggerMessage(EventId = 4022, Level = LogLevel.Information, Message = "Drift monitor {Monitor}, device {Device}: drift alarm lowered ({Alarm})")]
    public static partial void DeviceAlarmLowered(ILogger logger, string monitor, string device, DriftAlarm? alarm);

    [LoggerMessage(EventId = 4023, Level = LogLevel.Information, Message = "Drift monitor {Monitor}, device {Device}: drift alarm now names {Alarm}")]
    public static partial void DeviceAlarmRenamed(ILogger logger, string monitor, string device, DriftAlarm alarm);

    [LoggerMessage(EventId = 4024, Level = LogLevel.Information, Message = "Drift monitor {Monitor}: model outputs no longer drifted: {Summary}")]
    public static partial void OutputsStable(ILogger logger, string monitor, OutputVerdict summary);

    [LoggerMessage(EventId = 4013, Level = LogLevel.Warning, Message = "Drift monitor {Monitor}: could not save the drift state to {Path} ({Reason}); the previous file stays, and the save is retried at the next scoring tick")]
    public static partial void StateSaveFailed(ILogger logger, string monitor, string path, string reason);

    [LoggerMessage(EventId = 4014, Level = LogLevel.Debug, Message = "Drift monitor {Monitor}: looked up {Devices} new devices in the drift state store: {Restored} restored, {Absent} not stored, {OtherProfile} of another profile")]
    public static partial void StoreRestored(ILogger logger, string monitor, int devices, int restored, int absent, int otherProfile);

    [LoggerMessage(EventId = 4015, Level = LogLevel.Warning, Message = "Drift monitor {Monitor}: the stored drift state of device {Device} was saved against reference profile {SavedProfile}, not the current {CurrentProfile}: its thresholds and evidence do not apply, so the device starts fresh")]
    public static partial void StoreOtherProfile(ILogger logger, string monitor, string device, string savedProfile, string currentProfile);

    [LoggerMessage(EventId = 4016, Level = LogLevel.Warning, Message = "Drift monitor {Monitor}: could not load the drift state of {Devices} new devices from the store ({Reason}); they are not scored until it answers, retried at the next scoring tick ({GaveUp} scored fresh after {Attempts} failed attempts)")]
    public static partial void StoreLoadFailed(ILogger logger, Exception exception, string monitor, int devices, string reason, int gaveUp, int attempts);

    [LoggerMessage(EventId = 4017, Level = LogLevel.Warning, Message = "Drift monitor {Monitor}: the stored drift state of device {Device} cannot be used ({Reason}); the device starts fresh")]
    public static partial void StoreRecordUnreadable(ILogger logger, Exception exception, string monitor, string device, string reason);

    [LoggerMessage(EventId = 4018, Level = LogLevel.Debug, Message = "Drift monitor {Monitor}: saved {Devices} devices to the drift state store in {Elapsed}")]
    public static partial void StoreSaved(ILogger logger, string monitor, int devices, TimeSpan elapsed);

    [LoggerMessage(EventId = 4019, Level = LogLevel.Warning, Message = "Drift monitor {Monitor}: could not save {Devices} devices to the drift state store ({Reason}); they are saved again at the next scoring tick")]
    public static partial void StoreSaveFailed(ILogger logger, Exception exception, string monitor, int devices, string reason);

    [LoggerMessage(EventId = 4020, Level = LogLevel.Warning, Message = "Drift monitor {Monitor}: the drift state cannot be saved to {Path} now ({Reason}); it is kept in memory and saved once the folder is writable (DeviceDriftMonitor.StateSaveError says so until then)")]
    public static partial void StateFolderNotWritable(ILogger logger, string monitor, string path, string reason);
}

/// <summary>Logs what a report found.</summary>
internal static class MonitorLog
{
    public static void Report(ILogger logger, string monitor, DriftReport report)
    {
        if (!logger.IsEnabled(report.Device is null ? LogLevel.Warning : LogLevel.Debug))
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
