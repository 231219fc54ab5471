namespace Har.Inference;

/// <summary>
/// Turns a stream's window predictions into activity segments: a centred majority vote over
/// <c>smoothing</c> consecutive windows removes one-window flickers, then runs of equal labels are merged.
/// </summary>
/// <remarks>
/// Each window owns the central <c>stride</c> frames of its span (consecutive windows tile the stream);
/// the first window also owns the frames before its centre and the last the frames after it, so the
/// segments of a stream cover it without gaps or overlaps. A gap in the window starts (dropped windows)
/// ends a segment.
/// </remarks>
public sealed class ActivitySmoother
{
    private readonly ModelCard _card;
    private readonly int _smoothing;

    /// <summary>Initializes a new instance of the <see cref="ActivitySmoother"/> class.</summary>
    /// <param name="card">The model card (labels, window length, stride, sample rate).</param>
    /// <param name="smoothing">Windows in the majority vote, an odd number ≥ 1 (1 = no smoothing).</param>
    public ActivitySmoother(ModelCard card, int smoothing = 3)
    {
        ArgumentNullException.ThrowIfNull(card);
        if (smoothing < 1 || smoothing % 2 == 0)
        {
            throw new ArgumentOutOfRangeException(nameof(smoothing), smoothing, "Smoothing must be an odd number of windows ≥ 1 (a centred vote).");
        }

        _card = card;
        _smoothing = smoothing;
    }

    /// <summary>Segments consecutive window predictions of one stream.</summary>
    /// <param name="predictions">The predictions in stream order.</param>
    /// <param name="windowStarts">The first frame of each prediction's window (same length, increasing).</param>
    /// <returns>The segments in time order.</returns>
    public IReadOnlyList<ActivitySegment> Segment(ReadOnlySpan<Prediction> predictions, ReadOnlySpan<long> windowStarts)
    {
        if (predictions.Length != windowStarts.Length)
        {
            throw new ArgumentException($"{predictions.Length} predictions and {windowStarts.Length} window starts; expected one start per prediction.", nameof(windowStarts));
        }

        var n = predictions.Length;
        var smoothed = new int[n];
        var votes = new int[_card.ClassCount];
        var half = _smoothing / 2;
        for (var i = 0; i < n; i++)
        {
            if (i > 0 && windowStarts[i] <= windowStarts[i - 1])
            {
                throw new ArgumentException($"Window starts must increase; start {i} is {windowStarts[i]} after {windowStarts[i - 1]}.", nameof(windowStarts));
            }

            Array.Clear(votes);
            for (var j = Math.Max(0, i - half); j <= Math.Min(n - 1, i + half); j++)
            {
                votes[predictions[j].ClassIndex]++;
            }

            var own = predictions[i].ClassIndex;
            var best = own;
            for (var c = 0; c < votes.Length; c++)
            {
                if (votes[c] > votes[best])
                {
                    best = c;
                }
            }

            smoothed[i] = best;
        }

        var segments = new List<ActivitySegment>();
        var lead = (_card.WindowLength - _card.Stride) / 2;
        var runStart = 0;
        for (var i = 1; i <= n; i++)
        {
            var boundary = i == n || smoothed[i] != smoothed[runStart] || windowStarts[i] - windowStarts[i - 1] != _card.Stride;
            if (!boundary)
            {
                continue;
            }

            var first = runStart == 0 || windowStarts[runStart] - windowStarts[runStart - 1] != _card.Stride
                ? windowStarts[runStart]
                : windowStarts[runStart] + lead;
            var last = i == n || windowStarts[i] - windowStarts[i - 1] != _card.Stride
                ? windowStarts[i - 1] + _card.WindowLength
                : windowStarts[i - 1] + lead + _card.Stride;
            double confidence = 0;
            for (var j = runStart; j < i; j++)
            {
                confidence += predictions[j].Confidence;
            }

            var label = smoothed[runStart];
            segments.Add(new ActivitySegment(label, _card.Labels[label], first, last, ToTime(first), ToTime(last), (float)(confidence / (i - runStart)), i - runStart));
            runStart = i;
        }

        return segments;
    }

    private TimeSpan ToTime(long frame) => TimeSpan.FromSeconds(frame / _card.SampleRateHz);
}
