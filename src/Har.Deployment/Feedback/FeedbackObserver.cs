namespace Har.Deployment;

/// <summary>Records every version's stream predictions in the <see cref="FeedbackStore"/> so late labels can be joined to them.</summary>
internal sealed class FeedbackObserver(FeedbackStore store) : IServingObserver
{
    public void OnPredictions(in ServedPredictions predictions) => store.Record(predictions.StreamId, predictions.Version, predictions.StartFrames, predictions.Predictions);
}
