namespace Har.Inference.Data;

/// <summary>One continuous recording of a dataset in the common sample format: interleaved 6-channel frames and per-sample labels.</summary>
/// <remarks>Read by <see cref="SensorDataset.Load(string, string?, IProgress{double}?, CancellationToken)"/>.</remarks>
internal sealed class SensorSession
{
    internal SensorSession(int subject, int session, string split, float[] samples, byte[] labels)
    {
        Subject = subject;
        Session = session;
        Split = split;
        Samples = samples;
        Labels = labels;
    }

    /// <summary>Channels per frame (<c>ax ay az gx gy gz</c>).</summary>
    public const int Channels = 6;

    /// <summary>Gets the subject (volunteer) id.</summary>
    public int Subject { get; }

    /// <summary>Gets the recording id; <c>(Subject, Session)</c> identifies it.</summary>
    public int Session { get; }

    /// <summary>Gets the subject's split (<c>train</c>, <c>test</c> or <c>unknown</c>).</summary>
    public string Split { get; }

    /// <summary>Gets the interleaved frames <c>ax ay az gx gy gz</c> (g and rad/s).</summary>
    public float[] Samples { get; }

    /// <summary>Gets the activity id per sample, as in <c>labels.csv</c> (0 = unlabeled).</summary>
    public byte[] Labels { get; }

    /// <summary>Gets the number of frames (samples per channel) in the session.</summary>
    public int Length => Labels.Length;

    /// <summary>Returns the recording's identity and size.</summary>
    /// <returns>E.g. <c>subject 2 session 3 (test): 18026 frames</c>.</returns>
    public override string ToString() => string.Create(System.Globalization.CultureInfo.InvariantCulture, $"subject {Subject} session {Session} ({Split}): {Length} frames");
}
