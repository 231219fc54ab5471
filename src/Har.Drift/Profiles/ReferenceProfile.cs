using System.Security.Cryptography;
using System.Text.Json;
using System.Text.Json.Serialization;

namespace Har.Drift;

/// <summary>What the reference knows about one input channel over all the training data.</summary>
/// <param name="Name">Channel name (e.g. <c>ax</c>).</param>
/// <param name="Count">Number of training samples summarised.</param>
/// <param name="InnerEdges">Inner edges of the quantile bins (NumPy type-7 quantiles of all training samples).</param>
/// <param name="ReferenceCounts">Training samples per bin.</param>
/// <param name="SortedSample">A bounded sorted sample (evenly spaced order statistics of all training samples).</param>
/// <param name="Scale">Robust scale of the channel (interquartile range, or 1 when degenerate), used to compare quantile sketches.</param>
public sealed record ChannelReference(string Name, long Count, double[] InnerEdges, long[] ReferenceCounts, double[] SortedSample, double Scale);

/// <summary>
/// One training window summarised per channel: a quantile sketch and an effective sample size. A current window
/// is compared with the training windows that look most like it (same activity mix), not with the pooled data.
/// </summary>
/// <param name="Group">The group the window came from (e.g. the subject); calibration leaves a group out.</param>
/// <param name="Quantiles">Per channel, the sketch: quantiles at (i + ½)/Q, i = 0 … Q − 1.</param>
/// <param name="EffectiveSize">Per channel, the autocorrelation-aware effective sample size of the window.</param>
/// <param name="Gravity">Unit mean accelerometer direction of the window (empty when the channels have no accelerometer).</param>
public sealed record ReferenceSegment(string Group, double[][] Quantiles, double[] EffectiveSize, double[] Gravity);

/// <summary>Effect-size floors calibrated on the training data (leave-one-group-out), per channel.</summary>
/// <param name="KsFloor">Per channel, the KS D a window must reach to be called drifted.</param>
/// <param name="PsiFloor">Per channel, the PSI a window must reach to be called drifted.</param>
/// <param name="Quantile">The quantile of the leave-one-group-out null distribution the floors were taken at.</param>
/// <param name="Windows">Number of training windows the floors were calibrated on.</param>
public sealed record CalibratedFloors(double[] KsFloor, double[] PsiFloor, double Quantile, int Windows);

/// <summary>The model-output part of a reference: predicted-class mix and the distributions of confidence and entropy.</summary>
/// <param name="Labels">Class labels in model order.</param>
/// <param name="ClassCounts">Predicted windows per class in the reference.</param>
/// <param name="SortedConfidence">A bounded sorted sample of the top-class probability.</param>
/// <param name="SortedEntropy">A bounded sorted sample of the predictive entropy (nats).</param>
public sealed record OutputReference(string[] Labels, long[] ClassCounts, double[] SortedConfidence, double[] SortedEntropy)
{
    /// <summary>Builds the output reference from the model's predictions on reference windows (Har.Drift does not run models: the caller passes them).</summary>
    /// <param name="labels">Class labels in model order.</param>
    /// <param name="predictedClass">Predicted class index per window.</param>
    /// <param name="confidence">Top-class probability per window.</param>
    /// <param name="entropy">Predictive entropy per window.</param>
    /// <param name="maxSample">Bound on the stored sorted samples.</param>
    /// <returns>The output reference.</returns>
    public static OutputReference FromPredictions(IReadOnlyList<string> labels, ReadOnlySpan<int> predictedClass, ReadOnlySpan<float> confidence, ReadOnlySpan<float> entropy, int maxSample = 20_000)
    {
        ArgumentNullException.ThrowIfNull(labels);
        ArgumentOutOfRangeException.ThrowIfLessThan(maxSample, 2);
        if (predictedClass.Length != confidence.Length || predictedClass.Length != entropy.Length || predictedClass.IsEmpty)
        {
            throw new ArgumentException($"Got {predictedClass.Length} predicted classes, {confidence.Length} confidences and {entropy.Length} entropies; expected the same non-zero number of each (one per window).", nameof(predictedClass));
        }

        var counts = new long[labels.Count];
        foreach (var c in predictedClass)
        {
            if ((uint)c >= (uint)labels.Count)
            {
                throw new ArgumentOutOfRangeException(nameof(predictedClass), $"Predicted class {c} is outside the {labels.Count} labels.");
            }

            counts[c]++;
        }

        return new OutputReference([.. labels], counts, Sketch.BoundedSorted(confidence, maxSample), Sketch.BoundedSorted(entropy, maxSample));
    }
}

/// <summary>
/// A frozen reference profile: per-channel summaries of the training data, the training windows' sketches the
/// verdicts compare against, the effect-size floors calibrated on them, and optionally the model outputs. It is
/// serialised to JSON and identified by the SHA-256 of its canonical (compact, fixed-order) JSON bytes.
/// </summary>
public sealed class ReferenceProfile
{
    /// <summary>The profile format version written by this library.</summary>
    public const int CurrentSchemaVersion = 1;

    private static readonly JsonSerializerOptions Compact = new() { DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull };
    private static readonly JsonSerializerOptions Indented = new() { DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull, WriteIndented = true };

    /// <summary>Creates a profile from its parts (normally done by <see cref="ReferenceProfileBuilder"/> or <see cref="Load"/>).</summary>
    /// <param name="channels">Per-channel summaries.</param>
    /// <param name="segments">Training-window sketches.</param>
    /// <param name="floors">Calibrated effect-size floors.</param>
    /// <param name="sampleRateHz">Sample rate of the training data.</param>
    /// <param name="segmentLength">Samples per training window.</param>
    /// <param name="source">Free-text description of the training data.</param>
    /// <param name="outputs">Optional model-output reference.</param>
    /// <param name="sensorConsistency">Optional calibrated physics checks of a 6-axis IMU.</param>
    [JsonConstructor]
    public ReferenceProfile(IReadOnlyList<ChannelReference> channels, IReadOnlyList<ReferenceSegment> segments, CalibratedFloors floors, double sampleRateHz, int segmentLength, string source, OutputReference? outputs = null, SensorConsistencyReference? sensorConsistency = null)
    {
        ArgumentNullException.ThrowIfNull(channels);
        ArgumentNullException.ThrowIfNull(segments);
        ArgumentNullException.ThrowIfNull(floors);
        if (channels.Count == 0)
        {
            throw new ArgumentException("A reference profile needs at least one channel.", nameof(channels));
        }

        if (floors.KsFloor.Length != channels.Count || floors.PsiFloor.Length != channels.Count)
        {
            throw new ArgumentException($"The floors list {floors.KsFloor.Length} KS and {floors.PsiFloor.Length} PSI values; expected one per channel ({channels.Count}).", nameof(floors));
        }

        foreach (var s in segments)
        {
            if (s.Quantiles.Length != channels.Count || s.EffectiveSize.Length != channels.Count)
            {
                throw new ArgumentException($"Segment of group '{s.Group}' has {s.Quantiles.Length} channels; expected {channels.Count}.", nameof(segments));
            }
        }

        Channels = channels;
        Segments = segments;
        Floors = floors;
        SampleRateHz = sampleRateHz;
        SegmentLength = segmentLength;
        Source = source ?? string.Empty;
        Outputs = outputs;
        SensorConsistency = sensorConsistency;
        Hash = ComputeHash();
    }

    /// <summary>Gets the profile format version.</summary>
#pragma warning disable CA1822 // serialised as part of the profile, so it is an instance property
    public int SchemaVersion => CurrentSchemaVersion;
#pragma warning restore CA1822

    /// <summary>Gets a description of the training data the profile was built from.</summary>
    public string Source { get; }

    /// <summary>Gets the sample rate of the training data in Hz.</summary>
    public double SampleRateHz { get; }

    /// <summary>Gets the number of samples per training window (segment).</summary>
    public int SegmentLength { get; }

    /// <summary>Gets the per-channel summaries, in channel order.</summary>
    public IReadOnlyList<ChannelReference> Channels { get; }

    /// <summary>Gets the training-window sketches.</summary>
    public IReadOnlyList<ReferenceSegment> Segments { get; }

    /// <summary>Gets the calibrated effect-size floors.</summary>
    public CalibratedFloors Floors { get; }

    /// <summary>Gets the model-output reference, when one was attached.</summary>
    public OutputReference? Outputs { get; }

    /// <summary>Gets the calibrated physics-based consistency checks (gravity magnitude, gyroscope vs gravity rotation), when the channels are a 6-axis IMU.</summary>
    public SensorConsistencyReference? SensorConsistency { get; }

    /// <summary>Gets the SHA-256 (lower-case hex) of the profile's canonical JSON bytes (the profile without this field).</summary>
    [JsonIgnore]
    public string Hash { get; }

    /// <summary>Gets the channel names in order.</summary>
    [JsonIgnore]
    public IReadOnlyList<string> ChannelNames => [.. Channels.Select(c => c.Name)];

    /// <summary>Returns a copy with the model-output reference attached (one call at integration time).</summary>
    /// <param name="outputs">The output reference, e.g. from <see cref="OutputReference.FromPredictions"/>.</param>
    /// <returns>A new profile with a new hash.</returns>
    public ReferenceProfile WithOutputs(OutputReference outputs)
    {
        ArgumentNullException.ThrowIfNull(outputs);
        return new ReferenceProfile(Channels, Segments, Floors, SampleRateHz, SegmentLength, Source, outputs, SensorConsistency);
    }

    /// <summary>The canonical bytes the hash is computed over: compact JSON with the declared property order.</summary>
    /// <returns>UTF-8 JSON.</returns>
    public byte[] ToCanonicalJson() => JsonSerializer.SerializeToUtf8Bytes(this, Compact);

    /// <summary>Serialises the profile as indented JSON (the hash is recomputed on load, so it is not stored).</summary>
    /// <returns>The JSON text.</returns>
    public string ToJson() => JsonSerializer.Serialize(this, Indented);

    /// <summary>Writes the profile to a JSON file.</summary>
    /// <param name="path">Destination path.</param>
    public void Save(string path)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        File.WriteAllText(path, ToJson());
    }

    /// <summary>Parses a profile from JSON.</summary>
    /// <param name="json">The JSON text written by <see cref="ToJson"/>.</param>
    /// <returns>The profile.</returns>
    public static ReferenceProfile FromJson(string json)
    {
        ArgumentNullException.ThrowIfNull(json);
        ReferenceProfile? profile;
        try
        {
            using (var doc = JsonDocument.Parse(json))
            {
                if (doc.RootElement.ValueKind != JsonValueKind.Object
                    || !doc.RootElement.TryGetProperty(nameof(SchemaVersion), out var version)
                    || version.GetInt32() != CurrentSchemaVersion)
                {
                    throw new InvalidDataException($"The reference profile has no SchemaVersion {CurrentSchemaVersion}; this library reads version {CurrentSchemaVersion} profiles written by ReferenceProfile.ToJson.");
                }
            }

            profile = JsonSerializer.Deserialize<ReferenceProfile>(json, Compact);
        }
        catch (JsonException ex)
        {
            throw new InvalidDataException($"The reference profile is not valid JSON of the expected shape: {ex.Message}", ex);
        }

        if (profile is null)
        {
            throw new InvalidDataException("The reference profile JSON is 'null'; expected an object written by ReferenceProfile.ToJson.");
        }

        return profile;
    }

    /// <summary>Loads a profile from a JSON file.</summary>
    /// <param name="path">The file written by <see cref="Save"/>.</param>
    /// <returns>The profile.</returns>
    public static ReferenceProfile Load(string path)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        if (!File.Exists(path))
        {
            throw new FileNotFoundException($"Reference profile '{path}' does not exist; build one with 'har drift profile'.", path);
        }

        return FromJson(File.ReadAllText(path));
    }

    private string ComputeHash() => Convert.ToHexStringLower(SHA256.HashData(ToCanonicalJson()));
}
