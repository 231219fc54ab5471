using System.Security.Cryptography;
using System.Text.Json;
using System.Text.Json.Serialization;

namespace Har.Drift;

/// <summary>
/// A frozen reference profile: per-channel summaries of the training data, the training windows' sketches the
/// verdicts compare against, the effect-size floors calibrated on them, and optionally the model outputs. It is
/// serialised to JSON and identified by the SHA-256 of its canonical (compact, fixed-order) JSON bytes.
/// </summary>
public sealed class ReferenceProfile
{
    /// <summary>The profile format version written by this library.</summary>
    internal const int CurrentSchemaVersion = 1;

    private static readonly JsonSerializerOptions Compact = new() { DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull };
    private static readonly JsonSerializerOptions Indented = new() { DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull, WriteIndented = true };

    /// <summary>Creates a profile from its parts (done by <see cref="ReferenceProfileBuilder"/> and <see cref="Load"/>).</summary>
    /// <param name="channels">Per-channel summaries.</param>
    /// <param name="segments">Training-window sketches.</param>
    /// <param name="floors">Calibrated effect-size floors.</param>
    /// <param name="sampleRateHz">Sample rate of the training data.</param>
    /// <param name="segmentLength">Samples per training window.</param>
    /// <param name="source">Free-text description of the training data.</param>
    /// <param name="outputs">Optional model-output reference.</param>
    /// <param name="sensorConsistency">Optional calibrated physics checks of a 6-axis IMU.</param>
    /// <param name="alarms">Optional calibrated within-device checks and alarm statistics.</param>
    /// <exception cref="InvalidDataException">A part is missing or out of its structural bounds (<see cref="ReferenceProfileChecks"/>).</exception>
    [JsonConstructor]
    internal ReferenceProfile(IReadOnlyList<ChannelReference> channels, IReadOnlyList<ReferenceSegment> segments, CalibratedFloors floors, double sampleRateHz, int segmentLength, string source, OutputReference? outputs = null, SensorConsistencyReference? sensorConsistency = null, AlarmReference? alarms = null)
    {
        ReferenceProfileChecks.Check(channels, segments, floors, sampleRateHz, segmentLength);
        Channels = channels;
        Segments = segments;
        Floors = floors;
        SampleRateHz = sampleRateHz;
        SegmentLength = segmentLength;
        Source = source ?? string.Empty;
        Outputs = outputs;
        SensorConsistency = sensorConsistency;
        Alarms = alarms;
        ChannelNames = [.. channels.Select(c => c.Name)];
        Hash = ComputeHash();
    }

    /// <summary>Gets the profile format version.</summary>
#pragma warning disable CA1822 // serialised as part of the profile, so it is an instance property
    [JsonInclude]
    internal int SchemaVersion => CurrentSchemaVersion;
#pragma warning restore CA1822

    /// <summary>Gets a description of the training data the profile was built from.</summary>
    [JsonInclude]
    internal string Source { get; }

    /// <summary>Gets the sample rate of the training data in Hz.</summary>
    public double SampleRateHz { get; }

    /// <summary>Gets the number of samples per training window (segment).</summary>
    public int SegmentLength { get; }

    /// <summary>Gets the per-channel summaries, in channel order.</summary>
    [JsonInclude]
    internal IReadOnlyList<ChannelReference> Channels { get; }

    /// <summary>Gets the training-window sketches.</summary>
    [JsonInclude]
    internal IReadOnlyList<ReferenceSegment> Segments { get; }

    /// <summary>Gets the calibrated effect-size floors.</summary>
    [JsonInclude]
    internal CalibratedFloors Floors { get; }

    /// <summary>Gets the model-output reference, when one was attached.</summary>
    public OutputReference? Outputs { get; }

    /// <summary>Gets the calibrated physics-based consistency checks (gravity magnitude, gyroscope vs gravity rotation), when the channels are a 6-axis IMU.</summary>
    [JsonInclude]
    internal SensorConsistencyReference? SensorConsistency { get; }

    /// <summary>Gets the calibrated within-device, noise-floor and unit checks and the sequential alarm's training statistics, when the channels are a 6-axis IMU.</summary>
    [JsonInclude]
    internal AlarmReference? Alarms { get; }

    /// <summary>Gets the SHA-256 (lower-case hex) of the profile's canonical JSON bytes (the profile without this field).</summary>
    [JsonIgnore]
    public string Hash { get; }

    /// <summary>Gets the channel names in order.</summary>
    [JsonIgnore]
    public IReadOnlyList<string> ChannelNames { get; }

    /// <summary>Gets the number of training windows (segments) the current windows are matched against.</summary>
    [JsonIgnore]
    public int SegmentCount => Segments.Count;

    /// <summary>Returns a copy with the model-output reference attached (one call at integration time).</summary>
    /// <param name="outputs">The output reference, e.g. from <see cref="OutputReference.FromPredictions"/>.</param>
    /// <returns>A new profile with a new hash.</returns>
    public ReferenceProfile WithOutputs(OutputReference outputs)
    {
        ArgumentNullException.ThrowIfNull(outputs);
        return new ReferenceProfile(Channels, Segments, Floors, SampleRateHz, SegmentLength, Source, outputs, SensorConsistency, Alarms);
    }

    /// <summary>Returns a copy with the calibrated alarm reference.</summary>
    internal ReferenceProfile WithAlarms(AlarmReference? alarms) =>
        new(Channels, Segments, Floors, SampleRateHz, SegmentLength, Source, Outputs, SensorConsistency, alarms);

    /// <summary>The canonical bytes the hash is computed over: compact JSON with the declared property order.</summary>
    /// <returns>UTF-8 JSON.</returns>
    internal byte[] ToCanonicalJson() => JsonSerializer.SerializeToUtf8Bytes(this, Compact);

    /// <summary>Serialises the profile as indented JSON (the hash is recomputed on load, so it is not stored).</summary>
    /// <returns>The JSON text.</returns>
    internal string ToJson() => JsonSerializer.Serialize(this, Indented);

    /// <summary>
    /// Writes the profile to a JSON file, atomically: the JSON goes to a temporary file beside it, is flushed to disk and
    /// then renamed over <paramref name="path"/>, so a process killed while writing leaves the previous file (or none),
    /// never a cut one.
    /// </summary>
    /// <param name="path">Destination path.</param>
    public void Save(string path)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        var full = Path.GetFullPath(path);
        var temp = Path.Combine(Path.GetDirectoryName(full)!, $".{Path.GetFileName(full)}.{Guid.NewGuid():N}.tmp");
        try
        {
            using (var file = new FileStream(temp, FileMode.CreateNew, FileAccess.Write, FileShare.None))
            {
                file.Write(System.Text.Encoding.UTF8.GetBytes(ToJson()));
                file.Flush(flushToDisk: true);
            }

            File.Move(temp, full, overwrite: true);
        }
        catch
        {
            File.Delete(temp);
            throw;
        }
    }

    /// <summary>Parses a profile from JSON.</summary>
    /// <param name="json">The JSON text written by <see cref="ToJson"/>.</param>
    /// <returns>The profile.</returns>
    /// <exception cref="InvalidDataException">The text is not a profile of this schema version, or a part is missing or out of its bounds (a window length or sample rate that is not positive, arrays that do not match the channels, counts that do not add up); the message names the field and what was expected.</exception>
    internal static ReferenceProfile FromJson(string json)
    {
        ArgumentNullException.ThrowIfNull(json);
        ReferenceProfile? profile;
        try
        {
            using (var doc = JsonDocument.Parse(json))
            {
                if (doc.RootElement.ValueKind != JsonValueKind.Object
                    || !doc.RootElement.TryGetProperty(nameof(SchemaVersion), out var version)
                    || version.ValueKind != JsonValueKind.Number
                    || !version.TryGetInt32(out var number)
                    || number != CurrentSchemaVersion)
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
    /// <exception cref="FileNotFoundException">No file at <paramref name="path"/>; the message says how to build one (<see cref="ReferenceProfileBuilder"/>, <see cref="Save"/>).</exception>
    /// <exception cref="InvalidDataException">As <see cref="FromJson"/>; the message starts with the path.</exception>
    public static ReferenceProfile Load(string path)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        if (Directory.Exists(path))
        {
            throw new InvalidDataException($"Reference profile '{path}' is a folder; expected the JSON file ReferenceProfile.Save writes (or 'har drift profile').");
        }

        if (!File.Exists(path))
        {
            throw new FileNotFoundException($"Reference profile '{path}' does not exist; build one from training recordings with ReferenceProfileBuilder and write it with ReferenceProfile.Save (or with 'har drift profile').", path);
        }

        try
        {
            return FromJson(ReadText(path));
        }
        catch (InvalidDataException ex)
        {
            throw new InvalidDataException($"'{path}': {ex.Message}", ex);
        }
    }

    /// <summary>
    /// The file's text, as long as the file system says it is: <see cref="File.ReadAllText(string)"/> reads a file of length
    /// 0 (a device such as <c>/dev/zero</c>) until it ends, which it never does.
    /// </summary>
    private static string ReadText(string path)
    {
        using var handle = File.OpenHandle(path);
        var length = RandomAccess.GetLength(handle);
        if (length > Array.MaxLength)
        {
            throw new InvalidDataException($"The reference profile has {length} bytes; a profile is at most 2 GiB.");
        }

        var bytes = GC.AllocateUninitializedArray<byte>((int)length);
        var read = 0;
        while (read < bytes.Length && RandomAccess.Read(handle, bytes.AsSpan(read), read) is var n and > 0)
        {
            read += n;
        }

        using var reader = new StreamReader(new MemoryStream(bytes, 0, read), System.Text.Encoding.UTF8, detectEncodingFromByteOrderMarks: true);
        return reader.ReadToEnd();
    }

    /// <summary>Returns e.g. <c>reference profile 1a2b3c4d5e6f: 6 channels (ax ay az gx gy gz), 267 windows of 3000 samples at 50 Hz, outputs of 6 classes; UCI HAPT train split</c>.</summary>
    /// <returns>The summary.</returns>
    public override string ToString() => string.Create(
        System.Globalization.CultureInfo.InvariantCulture,
        $"reference profile {Hash[..12]}: {Channels.Count} channels ({string.Join(' ', ChannelNames)}), {Segments.Count} windows of {SegmentLength} samples at {SampleRateHz:G} Hz, {(Outputs is null ? "no outputs" : $"outputs of {Outputs.Labels.Length} classes")}, {AlarmSummary()}; {Source}");

    /// <summary>What the sequential alarm was calibrated on, or why there is none.</summary>
    private string AlarmSummary() => Alarms switch
    {
        null => "no device alarm (it needs 6-axis IMU recordings the sensor-consistency checks could be calibrated on)",
        { FalseAlarmRates: null or { Count: 0 } } => "device alarm without simulated rates (every check at the smallest threshold)",
        var a => string.Create(System.Globalization.CultureInfo.InvariantCulture, $"device alarm calibrated on {a.DeviceHours:0.0#} device-hours of {a.Sessions} recordings"),
    };

    private string ComputeHash() => Convert.ToHexStringLower(SHA256.HashData(ToCanonicalJson()));
}
