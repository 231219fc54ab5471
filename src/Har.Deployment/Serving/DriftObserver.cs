using Har.Drift;

namespace Har.Deployment;

/// <summary>
/// The one adapter between the serving path and Har.Drift: every served window goes to the per-device
/// drift monitor with its prediction (input drift and physics checks per device; output drift — class mix,
/// confidence, entropy — over the pooled predictions). Consecutive windows of a stream overlap; only their
/// new frames enter the device's buffer. Anonymous whole-window requests are one device, <c>anonymous</c>.
/// </summary>
internal sealed class DriftObserver(DeviceDriftMonitor monitor) : IServingObserver
{
    private const string Anonymous = "anonymous";

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
        for (var i = 0; i < predictions.Length; i++)
        {
            ref readonly var x = ref predictions[i];
            var overlapFrames = p.StartFrames.IsEmpty || p.StartFrames[i] == 0 ? 0 : overlap;
            monitor.Observe(device, p.GetWindow(i)[context..], overlapFrames, x.ClassIndex, x.Confidence, x.Entropy);
        }
    }
}
