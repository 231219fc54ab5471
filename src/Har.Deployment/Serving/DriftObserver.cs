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
internal sealed class DriftObserver(DeviceDriftMonitor monitor, Func<string, IReadOnlyList<string>?> labelsOf) : IServingObserver
{
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
            monitor.Observe(device, p.GetWindow(i)[context..], overlapFrames, predicted < profileClasses ? predicted : Har.Drift.OutputReference.OtherActivity, x.Confidence, x.Entropy);
        }
    }
}
