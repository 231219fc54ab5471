namespace Har.Drift;

/// <summary>
/// A device's latest report in the drift state file, written and read back field by field (every field, internal ones
/// included), so that <see cref="DeviceDriftMonitor.GetLatest"/>, <see cref="DeviceDriftMonitor.GetAlarmed"/> and the
/// gauges answer after a restart as they did before it. A device monitor's reports carry no output verdict.
/// </summary>
internal static class ReportState
{
    private const int MaxItems = 1 << 16;

    public static void Write(StateWriter w, DriftReport r)
    {
        w.Write(r.ReferenceHash);
        w.Write((int)r.Correction);
        w.Write(r.Alpha);
        w.Write(r.MatchedSegments);
        w.Write(r.Channels.Count);
        foreach (var c in r.Channels)
        {
            w.Write(c.Channel);
            w.Write((int)c.Verdict);
            w.Write(c.N);
            w.Write(c.EffectiveN);
            w.Write(c.ReferenceEffectiveN);
            Write(w, c.Ks);
            Write(w, c.Psi);
        }

        w.Write(r.Findings.Count);
        foreach (var f in r.Findings)
        {
            w.Write((int)f.Kind);
            w.WriteNullable(f.Channel);
            w.Write(f.Value);
            w.Write(f.Threshold);
            w.Write(f.Message);
            w.Write(f.Samples);
            w.WriteNullable(f.Implicated?.ToArray(), static (x, v) => x.Write(v));
            w.Write(f.Recent);
            w.Write(f.Ideal);
            w.WriteNullable(f.Check);
            w.Write(f.Repeated);
        }

        w.Write(r.Unchecked);
        w.Write(r.Alarm is not null);
        if (r.Alarm is { } a)
        {
            w.Write(a.Raised);
            w.Write(a.Statistic);
            w.Write(a.Threshold);
            w.Write((int)a.Cause);
            w.Write(a.Channels);
            w.Write(a.Diagnosis);
        }
    }

    public static DriftReport Read(StateReader r, string device)
    {
        var hash = r.ReadString();
        var correction = r.ReadEnum<MultipleTestingCorrection>();
        var alpha = r.ReadDouble();
        var matched = r.ReadInt32s(MaxItems, "matched segments");
        var channels = new ChannelVerdict[r.ReadCount(MaxItems, "channels")];
        for (var i = 0; i < channels.Length; i++)
        {
            channels[i] = new ChannelVerdict(r.ReadString(), r.ReadEnum<DriftVerdict>(), r.ReadInt32(), r.ReadDouble(), r.ReadDouble(), ReadEvidence(r), ReadEvidence(r));
        }

        var findings = new SensorFinding[r.ReadCount(MaxItems, "findings")];
        for (var i = 0; i < findings.Length; i++)
        {
            findings[i] = new SensorFinding(r.ReadEnum<SensorFindingKind>(), r.ReadNullableString(), r.ReadDouble(), r.ReadDouble(), r.ReadString(), r.ReadInt32(), r.ReadNullable(static x => x.ReadStrings(MaxItems, "implicated channels")))
            {
                Recent = r.ReadDouble(),
                Ideal = r.ReadDouble(),
                Check = r.ReadNullableString(),
                Repeated = r.ReadBoolean(),
            };
        }

        var report = new DriftReport(hash, correction, alpha, matched, channels, findings, outputs: null, device)
        {
            Unchecked = r.ReadStrings(MaxItems, "unchecked notes"),
        };
        if (r.ReadBoolean())
        {
            report.Alarm = new DriftAlarm(r.ReadBoolean(), r.ReadDouble(), r.ReadDouble(), r.ReadEnum<DriftCause>(), r.ReadStrings(MaxItems, "alarm channels"), r.ReadString());
        }

        return report;
    }

    private static void Write(StateWriter w, TestEvidence? e)
    {
        w.Write(e is not null);
        if (e is null)
        {
            return;
        }

        w.Write(e.Test);
        w.Write(e.Statistic);
        w.Write(e.PValue);
        w.Write(e.AdjustedPValue);
        w.Write(e.Floor);
        w.Write(e.Significant);
        w.Write(e.AboveFloor);
        w.WriteNullable(e.InnerEdges, static (x, v) => x.Write(v));
        w.WriteNullable(e.ReferenceCounts, static (x, v) => x.Write(v));
        w.WriteNullable(e.CurrentCounts, static (x, v) => x.Write(v));
    }

    private static TestEvidence? ReadEvidence(StateReader r) => !r.ReadBoolean() ? null : new TestEvidence(
        r.ReadString(), r.ReadDouble(), r.ReadDouble(), r.ReadDouble(), r.ReadDouble(), r.ReadBoolean(), r.ReadBoolean(),
        r.ReadNullable(static x => x.ReadDoubles(MaxItems, "bin edges")),
        r.ReadNullable(static x => x.ReadInt64s(MaxItems, "reference counts")),
        r.ReadNullable(static x => x.ReadInt64s(MaxItems, "current counts")));
}
