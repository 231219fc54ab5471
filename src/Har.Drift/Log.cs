using Microsoft.Extensions.Logging;

namespace Har.Drift;

/// <summary>Source-generated log messages of Har.Drift.</summary>
internal static partial class Log
{
    [LoggerMessage(EventId = 4001, Level = LogLevel.Warning, Message = "Drift monitor {Monitor}: channel {Channel} drifted (KS D {D:F3}, PSI {Psi:F3}, n_eff {NEff:F0})")]
    public static partial void ChannelDrifted(ILogger logger, string monitor, string channel, double d, double psi, double nEff);

    [LoggerMessage(EventId = 4002, Level = LogLevel.Warning, Message = "Drift monitor {Monitor}: sensor finding {Kind}: {Detail}")]
    public static partial void SensorFinding(ILogger logger, string monitor, SensorFindingKind kind, string detail);
}
