namespace Har.Inference;

/// <summary>
/// Receives every prediction and failure of a <see cref="HarModel"/>, e.g. to feed rollout analysis or
/// drift monitoring. Called synchronously on the inference thread: keep it fast and non-throwing.
/// </summary>
internal interface IPredictionObserver
{
    /// <summary>Called after a batch of windows was scored.</summary>
    /// <param name="model">The card of the model that produced the predictions.</param>
    /// <param name="predictions">The predictions, in input order; only valid during the call.</param>
    void OnPredictions(ModelCard model, ReadOnlySpan<Prediction> predictions);

    /// <summary>Called when a batch of windows could not be scored.</summary>
    /// <param name="model">The card of the model that failed.</param>
    /// <param name="windows">The number of windows affected.</param>
    /// <param name="error">The failure.</param>
    void OnError(ModelCard model, int windows, Exception error);
}
