namespace Har.Deployment;

/// <summary>
/// Feedback labels in a fleet: a label reaches whichever replica the proxy chose, but joins only the windows of its
/// stream, which the replica that served the stream holds; and the accuracy gate runs on the leader. Each replica
/// forwards the labels it receives to the others (<see cref="DrainForwarded"/>, <see cref="ApplyForwarded"/>), and
/// writes the windows it labelled to the fleet's table (<see cref="WriteLabelledWindows"/>), from which the leader adds the
/// other replicas' to its own (<see cref="ImportLabelledWindows"/>).
/// </summary>
public sealed partial class FeedbackStore
{
    private readonly Lock _fleetLock = new();

    /// <summary>The names this store's windows were written to the fleet's table under (one per controller opened on it): its own rows, never imported.</summary>
    private readonly HashSet<string> _fleetWriters = new(StringComparer.Ordinal);

    /// <summary>The last row of the fleet's table imported (0: none yet).</summary>
    private long _fleetImported;

    /// <summary>
    /// Starts (or stops) keeping every label reported here for <see cref="DrainForwarded"/>: in a fleet a label reaches
    /// whichever replica the proxy chose, and the stream's windows may be on another, which applies it too
    /// (<see cref="ApplyForwarded"/>). At most <see cref="FeedbackLimits.LabelledWindows"/> wait; older ones are dropped.
    /// </summary>
    internal void KeepForForwarding(bool keep) => _forwarded.Keep(keep);

    /// <summary>Takes the labels reported here since the last drain, for the other replicas.</summary>
    internal List<ForwardedLabel> DrainForwarded() => _forwarded.Drain();

    /// <summary>Puts labels <see cref="DrainForwarded"/> took back in front of the ones received since (their forwarding failed).</summary>
    internal void Requeue(List<ForwardedLabel> labels) => _forwarded.Requeue(labels);

    /// <summary>Applies labels another replica received (never forwarded again); a label for a stream this store does not hold labels nothing.</summary>
    /// <returns>How many windows they labelled here.</returns>
    internal int ApplyForwarded(IEnumerable<ForwardedLabel> labels)
    {
        var windows = 0;
        foreach (var l in labels)
        {
            var truth = IndexOf(l.Activity);
            if (truth < 0 || string.IsNullOrEmpty(l.StreamId))
            {
                continue;
            }

            if (l.StartFrame is { } start && l.EndFrame is { } end && start >= 0 && end > start)
            {
                windows += Join(l.StreamId, truth, start, end, byTime: false);
            }
            else if (l.From is { } from && l.To is { } to && to > from)
            {
                windows += Join(l.StreamId, truth, from.UtcTicks, to.UtcTicks, byTime: true);
            }
        }

        return windows;
    }

    /// <summary>
    /// Starts (or stops) keeping every window labelled here for <see cref="DrainShipped"/>: a fleet replica writes them to
    /// the fleet's table, from which the leader's accuracy gate reads the whole fleet's labels. At most
    /// <see cref="FeedbackLimits.LabelledWindows"/> wait; older ones are dropped.
    /// </summary>
    internal void KeepForShipping(bool keep) => _shipped.Keep(keep);

    /// <summary>Takes the windows labelled here since the last drain (by activity and version name, for another replica's store).</summary>
    internal List<ShippedLabel> DrainShipped() => _shipped.Drain();

    /// <summary>
    /// Writes the windows labelled here since the last call to the fleet's table (<c>har_fleet.labelled_windows</c>) as
    /// <paramref name="fleet"/>'s replica, and keeps every window labelled from now on for the next call. Windows the
    /// database did not take wait for the next call, in front of newer ones (at most <see cref="FeedbackLimits.LabelledWindows"/>,
    /// the oldest dropped past it, as the table itself keeps no more).
    /// </summary>
    /// <exception cref="IOException">The database did not answer; the windows wait.</exception>
    internal void WriteLabelledWindows(FleetStore fleet)
    {
        lock (_fleetLock)
        {
            _fleetWriters.Add(fleet.Holder);
        }

        _shipped.Keep(true);
        var windows = _shipped.Drain();
        if (windows.Count == 0)
        {
            return;
        }

        try
        {
            fleet.WriteLabelledWindows(windows, Limits.LabelledWindows);
        }
        catch (IOException)
        {
            _shipped.Requeue(windows);
            throw;
        }
    }

    /// <summary>
    /// Adds the windows other replicas wrote to the fleet's table since the last import — every row kept, the first time
    /// (a new leader) — to this store; rows this store wrote itself, under any controller's name, are already here and
    /// are skipped, and so is each row imported before.
    /// </summary>
    /// <returns>The windows added, and the rows that did not parse (skipped).</returns>
    /// <exception cref="IOException">The database did not answer; nothing was imported.</exception>
    internal (int Added, int Skipped) ImportLabelledWindows(FleetStore fleet)
    {
        lock (_fleetLock)
        {
            var (last, windows, skipped) = fleet.ReadLabelledWindows(_fleetImported, _fleetWriters);
            var added = Import(windows);
            _fleetImported = last;
            return (added, skipped);
        }
    }

    /// <summary>
    /// Adds windows another replica labelled (its <see cref="DrainShipped"/>): the leader of a fleet joins the other
    /// replicas' labels to its own, so its accuracy gate and <c>har_model_accuracy</c> read the whole fleet's. Activities
    /// this store does not know never match a label; versions are matched by name.
    /// </summary>
    /// <param name="labels">The windows.</param>
    /// <param name="ship">Whether they are kept for <see cref="DrainShipped"/> like the windows labelled here (windows that reached no table yet).</param>
    /// <returns>How many windows were added.</returns>
    internal int Import(IEnumerable<ShippedLabel> labels, bool ship = false)
    {
        var added = 0;
        foreach (var label in labels)
        {
            if (label.Predictions.Count == 0)
            {
                continue;
            }

            // The versions first: one that names an activity this store does not know yet adds it (a candidate's new class).
            var ids = label.Predictions.Take(3).Select(p => Version(p.Version).Id).ToArray();
            var truth = IndexOf(label.Truth);
            if (truth < 0)
            {
                continue;
            }

            var w = new LabelledWindow { Truth = (short)truth, Version0 = -1, Version1 = -1, Version2 = -1 };
            for (var i = 0; i < ids.Length; i++)
            {
                w.Set(ids[i], (short)IndexOf(label.Predictions[i].Activity));
            }

            Add(w, ship);
            added++;
        }

        return added;
    }

    private ShippedLabel Ship(VersionInfo[] versions, in LabelledWindow w)
    {
        var predictions = new List<ShippedPrediction>(3);
        var activities = Activities;
        foreach (var (id, predicted) in (ReadOnlySpan<(int, short)>)[(w.Version0, w.Predicted0), (w.Version1, w.Predicted1), (w.Version2, w.Predicted2)])
        {
            if (id >= 0 && id < versions.Length)
            {
                predictions.Add(new ShippedPrediction(versions[id].Name, predicted >= 0 && predicted < activities.Count ? activities[predicted] : null));
            }
        }

        return new ShippedLabel(activities[w.Truth], predictions, Guid.NewGuid().ToString("N"));
    }
}

/// <summary>A label as one replica received it, for the others: a frame range (<see cref="StartFrame"/>, <see cref="EndFrame"/>) or a time range (<see cref="From"/>, <see cref="To"/>).</summary>
internal sealed record ForwardedLabel(string StreamId, string Activity, long? StartFrame, long? EndFrame, DateTimeOffset? From, DateTimeOffset? To);

/// <summary>
/// A window labelled on one replica, as another replica's store takes it: the true activity and each version's answer by
/// name (null: a class that store's activities lack), and an id unique to the labelling (null from a replica of an
/// earlier release), so that a write retried after its reply was lost stores it once.
/// </summary>
internal sealed record ShippedLabel(string Truth, IReadOnlyList<ShippedPrediction> Predictions, string? Id = null);

/// <summary>One version's answer on a shipped labelled window, by activity name (null: a class the shipping store's activities lack).</summary>
internal sealed record ShippedPrediction(string Version, string? Activity);
