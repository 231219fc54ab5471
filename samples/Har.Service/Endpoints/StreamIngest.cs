using Har.Deployment;
using Har.Drift;
using Har.Inference;

namespace Har.Service.Endpoints;

/// <summary>
/// Wiring of the stream path: per-stream windowing (Har.Inference), then each completed window through
/// the rollout router and micro-batcher (Har.Deployment → Har.Inference), and the raw frames to the
/// drift monitor (Har.Drift). Appends to one stream are serialised (a striped lock), different streams
/// run concurrently.
/// </summary>
internal sealed class StreamIngest
{
    private readonly StreamWindower _windower;
    private readonly RolloutController _controller;
    private readonly DriftMonitor? _drift;
    private readonly object[] _locks = [.. Enumerable.Range(0, 256).Select(_ => new object())];

    public StreamIngest(StreamWindower windower, RolloutController controller, DriftMonitor? drift)
    {
        _windower = windower;
        _controller = controller;
        _drift = drift;
    }

    public int FrameValues => _windower.Channels;

    public int WindowValues => _windower.WindowLength * _windower.Channels;

    public async Task<IReadOnlyList<(long StartFrame, Prediction Prediction)>> AppendAsync(string streamId, float[] samples, CancellationToken cancellationToken)
    {
        float[][] windows;
        long[] starts;
        lock (_locks[(uint)StringComparer.Ordinal.GetHashCode(streamId) % (uint)_locks.Length])
        {
            var completed = _windower.Append(streamId, samples);
            windows = new float[completed.Count][];
            starts = new long[completed.Count];
            for (var i = 0; i < completed.Count; i++)
            {
                windows[i] = completed[i].ToArray();
                starts[i] = completed.GetStartFrame(i);
            }
        }

        _drift?.Append(samples);
        var tasks = new Task<Prediction>[windows.Length];
        for (var i = 0; i < windows.Length; i++)
        {
            tasks[i] = _controller.PredictAsync(streamId, windows[i], cancellationToken).AsTask();
        }

        var predictions = await Task.WhenAll(tasks);
        var result = new (long, Prediction)[windows.Length];
        for (var i = 0; i < windows.Length; i++)
        {
            result[i] = (starts[i], predictions[i]);
        }

        return result;
    }
}
