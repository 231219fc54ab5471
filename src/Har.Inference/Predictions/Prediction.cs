namespace Har.Inference;

/// <summary>The model's answer for one window.</summary>
public readonly struct Prediction
{
    internal Prediction(int classIndex, string label, float confidence, float entropy, bool isUncertain, ReadOnlyMemory<float> probabilities, TimeSpan latency, string modelVersion)
    {
        ClassIndex = classIndex;
        Label = label;
        Confidence = confidence;
        Entropy = entropy;
        IsUncertain = isUncertain;
        Probabilities = probabilities;
        Latency = latency;
        ModelVersion = modelVersion;
    }

    /// <summary>Gets the index of the most probable class in <see cref="ModelCard.Labels"/>.</summary>
    public int ClassIndex { get; }

    /// <summary>Gets the name of the most probable class.</summary>
    public string Label { get; }

    /// <summary>Gets the probability of the most probable class, in [0, 1].</summary>
    public float Confidence { get; }

    /// <summary>Gets the Shannon entropy of the probabilities in nats, in [0, ln K].</summary>
    public float Entropy { get; }

    /// <summary>Gets a value indicating whether <see cref="Confidence"/> is below the model's uncertainty threshold.</summary>
    public bool IsUncertain { get; }

    /// <summary>
    /// Gets the class probabilities (length K, sum 1). From the buffer-based overloads of <see cref="HarModel"/> this is
    /// a slice of the caller's buffer (no copy); from the single-window ones it is owned by the prediction.
    /// </summary>
    public ReadOnlyMemory<float> Probabilities { get; }

    /// <summary>Gets the time from the window's enqueueing to its result on the batched path (queueing included), or the batch's run on the synchronous path, on the model's <see cref="TimeProvider"/>.</summary>
    public TimeSpan Latency { get; }

    /// <summary>Gets the version of the model that produced the prediction.</summary>
    public string ModelVersion { get; }

    /// <summary>
    /// Gets this window's share of the model's own run time: the ONNX Runtime run of the batch that scored it,
    /// divided by the windows in that batch, measured on the monotonic clock (<see cref="System.Diagnostics.Stopwatch.GetTimestamp"/>,
    /// never a <see cref="TimeProvider"/>). Unlike <see cref="Latency"/> it holds no queueing or batching wait.
    /// </summary>
    /// <value>Positive for every scored window; <see cref="TimeSpan.Zero"/> for a prediction made by hand.</value>
    public TimeSpan ServiceTime { get; internal init; }

    /// <summary>
    /// Gets the number of windows in the model run that scored this window: 1 on the single-window path and for a
    /// batch of one, more when windows were scored together. <see cref="ServiceTime"/> is that run's time divided by
    /// this count, so service times are comparable only between runs of similar size.
    /// </summary>
    /// <value>At least 1 for every scored window; 0 for a prediction made by hand.</value>
    public int BatchSize { get; internal init; }

    /// <summary>Returns the label, confidence, entropy and model, e.g. <c>WALKING 93 % (entropy 0.21, model 1.0.0)</c> (invariant culture; <c>, uncertain</c> after the entropy when <see cref="IsUncertain"/>).</summary>
    /// <returns>A one-line summary.</returns>
    public override string ToString() =>
        string.Create(System.Globalization.CultureInfo.InvariantCulture, $"{Label} {Confidence:P0} (entropy {Entropy:0.00}{(IsUncertain ? ", uncertain" : string.Empty)}, model {ModelVersion})");
}
