using Har.Drift;

namespace Har.Deployment;

/// <summary>
/// The one adapter between the serving path and Har.Drift: every served window goes to the per-device
/// drift monitor with its prediction (input drift and physics checks per device; output drift — class mix,
/// confidence, entropy — over the pooled predictions). Consecutive windows of a stream overlap; only their
/// new frames enter the device's buffer. Anonymous whole-window requests are one device, <c>anonymous</c>.
/// Predicted classes are passed in the profile's label order, mapped by activity name from the order of the version
/// that made them (<see cref="ClassOrder"/>): a candidate that lists its labels in another order than the model the
/// profile was built with is pooled by what it predicted, not by index. An activity the profile's labels lack (a version
/// that added a class) is passed as <see cref="Har.Drift.OutputReference.OtherActivity"/>: its window still counts for input drift,
/// and the class mix counts it as a class the reference never predicted.
/// </summary>
internal sealed class DriftObserver(DeviceDriftMonitor monitor, Func<string, IReadOnlyList<string>?> labelsOf, int[]? channelMap = null) : IServingObserver
{
    /// <summary>
    /// Where each of the profile's channels is in the served windows (<see langword="null"/>: the same order). The profile
    /// names its channels and the model's card its own: a profile of the same channels in another order is fed the
    /// windows' channels reordered by name (found from outside: a gyro-first model's windows would have been read with
    /// gx as ax, raising unit and gain alarms on every healthy device); other channels are refused.
    /// </summary>
    /// <returns>The map, or <see langword="null"/> and no problem for the same order; a problem when the profile reads a channel the served windows do not hold, or another number of channels.</returns>
    internal static (int[]? Map, string? Problem) ChannelMap(IReadOnlyList<string> profile, IReadOnlyList<string> served, string version)
    {
        if (profile.SequenceEqual(served, StringComparer.Ordinal))
        {
            return (null, null);
        }

        var map = profile.Select(c => served.ToList().IndexOf(c)).ToArray();
        return profile.Count != served.Count || map.Contains(-1)
            ? (null, $"The drift monitor's reference profile reads channels {string.Join(' ', profile)}, but the current version {version} is served windows of {string.Join(' ', served)}: build the profile for this model's channels (har drift profile --model <its .onnx>, or ReferenceProfileBuilder with its card's channel names), or open the pipeline without drift.")
            : (map, null);
    }

    private const string Anonymous = "anonymous";

    /// <summary>The name under which <see cref="_order"/> knows the profile's labels (no version name holds a NUL).</summary>
    private const string Profile = "\0profile";

    private readonly ClassOrder _order = new(v => v == Profile ? monitor.OutputLabels : labelsOf(v));

    public void OnPredictions(in ServedPredictions p)
    {
        if (p.Role != PredictionRole.Served)
        {
            return; // shadow and mirror runs saw the same frames; their outputs are not what the device got
        }

        var device = p.StreamId ?? Anonymous;
        var context = p.Geometry.ContextFrames * p.Channels; // drift reads the windows the predictions label, not their context
        var overlap = Math.Max(0, p.Geometry.WindowLength - p.Stride);
        var predictions = p.Predictions;
        var map = _order.Map(p.Version, Profile);
        var profileClasses = monitor.OutputLabels?.Count ?? int.MaxValue;
        for (var i = 0; i < predictions.Length; i++)
        {
            ref readonly var x = ref predictions[i];
            var overlapFrames = p.StartFrames.IsEmpty || p.StartFrames[i] == 0 ? 0 : overlap;
            var predicted = ClassOrder.Translate(map, x.ClassIndex);
            var window = p.GetWindow(i)[context..];
            var label = predicted < profileClasses ? predicted : Har.Drift.OutputReference.OtherActivity;
            if (channelMap is null)
            {
                monitor.Observe(device, window, overlapFrames, label, x.Confidence, x.Entropy);
                continue;
            }

            var reordered = System.Buffers.ArrayPool<float>.Shared.Rent(window.Length);
            try
            {
                Reorder(window, reordered.AsSpan(0, window.Length), channelMap);
                monitor.Observe(device, reordered.AsSpan(0, window.Length), overlapFrames, label, x.Confidence, x.Entropy);
            }
            finally
            {
                System.Buffers.ArrayPool<float>.Shared.Return(reordered);
            }
        }
    }

    /// <summary>Writes <paramref name="window"/>'s frames into <paramref name="into"/> with the channels in the profile's order.</summary>
    internal static void Reorder(ReadOnlySpan<float> window, Span<float> into, int[] map)
    {
        var channels = map.Length;
        for (var f = 0; f < window.Length; f += channels)
        {
            for (var c = 0; c < channels; c++)
            {
                into[f + c] = window[f + map[c]];
            }
        }
    }
}
