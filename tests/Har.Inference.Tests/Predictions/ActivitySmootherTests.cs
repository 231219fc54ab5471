namespace Har.Inference.Tests.Predictions;

public sealed class ActivitySmootherTests
{
    private static readonly ModelCard Card = ModelCard.Load(Fixture.Probs);

    private static Prediction P(int c, float confidence = 0.9f) =>
        new(c, Card.Labels[c], confidence, 0.1f, confidence < 0.7f, ReadOnlyMemory<float>.Empty, TimeSpan.Zero, "1.0.0");

    [Fact]
    public void Segment_RemovesOneWindowFlickerAndTilesTheStream()
    {
        Prediction[] predictions = [P(0), P(0), P(3), P(0), P(0), P(4), P(4), P(4)];
        var starts = Enumerable.Range(0, predictions.Length).Select(i => (long)i * Card.Stride).ToArray();

        var segments = new ActivitySmoother(Card, smoothing: 3).Segment(predictions, starts);

        Assert.Equal(2, segments.Count);
        Assert.Equal(("WALKING", 0L, 5), (segments[0].Label, segments[0].StartFrame, segments[0].Windows));
        Assert.Equal("STANDING", segments[1].Label);
        Assert.Equal(segments[0].EndFrame, segments[1].StartFrame); // no gap, no overlap
        Assert.Equal(starts[^1] + Card.WindowLength, segments[1].EndFrame);
        Assert.Equal(TimeSpan.FromSeconds(segments[1].EndFrame / 50.0), segments[1].End);
        Assert.Equal(0.9f, segments[0].MeanConfidence, 5);
    }

    [Fact]
    public void Segment_NoSmoothing_KeepsEveryChange()
    {
        Prediction[] predictions = [P(0), P(3, 0.5f), P(0)];
        var segments = new ActivitySmoother(Card, smoothing: 1).Segment(predictions, [0, 100, 200]);
        Assert.Equal(3, segments.Count);
        Assert.Equal(0.5f, segments[1].MeanConfidence);
    }

    [Fact]
    public void Constructor_EvenSmoothing_Throws()
    {
        var ex = Assert.Throws<ArgumentOutOfRangeException>(() => new ActivitySmoother(Card, 2));
        Assert.Contains("odd number", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Segment_MismatchedStarts_Throws()
    {
        var ex = Assert.Throws<ArgumentException>(() => new ActivitySmoother(Card).Segment([P(0)], []));
        Assert.Contains("one start per prediction", ex.Message, StringComparison.Ordinal);
    }
}
