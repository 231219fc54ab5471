using Har.Drift;

namespace Har.Deployment;

/// <summary>
/// The one adapter between the serving path and Har.Drift: every frame that enters the pipeline (stream
/// appends and the frames of whole windows) goes to the drift monitor. Swapping the drift API touches
/// only this file.
/// </summary>
internal sealed class DriftObserver(DriftMonitor monitor) : IServingObserver
{
    public void OnSamples(string? streamId, ReadOnlySpan<float> frames) => monitor.Append(frames);

    public void OnPredictions(in ServedPredictions predictions)
    {
    }
}
