namespace Har.Inference.Data;

/// <summary>One continuous recording of a dataset in the common sample format: interleaved 6-channel frames and per-sample labels.</summary>
/// <param name="Subject">Subject (volunteer) id.</param>
/// <param name="Session">Recording id; <c>(Subject, Session)</c> identifies it.</param>
/// <param name="Split">The subject's split from <c>splits.csv</c> (<c>train</c> or <c>test</c>), or <c>unknown</c>.</param>
/// <param name="Samples">Interleaved frames <c>ax ay az gx gy gz</c>, <c>6 × Length</c> values (g and rad/s).</param>
/// <param name="Labels">Activity id per sample, as in <c>labels.csv</c> (0 = unlabeled).</param>
public sealed record SensorSession(int Subject, int Session, string Split, float[] Samples, byte[] Labels)
{
    /// <summary>Channels per frame (<c>ax ay az gx gy gz</c>).</summary>
    public const int Channels = 6;

    /// <summary>Gets the number of frames (samples per channel) in the session.</summary>
    public int Length => Labels.Length;
}
