namespace Har.Drift;

/// <summary>The bounded current window of one stream: the latest frames (interleaved) and their optional timestamps. Not thread-safe.</summary>
internal sealed class FrameRing
{
    private readonly int _channels;
    private readonly int _capacity;
    private readonly float[] _ring;
    private readonly long[] _timestamps;
    private bool _hasTimestamps;

    public FrameRing(int capacity, int channels)
    {
        _capacity = capacity;
        _channels = channels;
        _ring = new float[capacity * channels];
        _timestamps = new long[capacity];
    }

    /// <summary>Gets the number of frames appended since the stream started (or was cleared).</summary>
    public long Written { get; private set; }

    /// <summary>Gets the number of frames held (at most the capacity).</summary>
    public int Held => (int)Math.Min(Written, _capacity);

    /// <summary>Appends whole frames (no allocation).</summary>
    public void Append(ReadOnlySpan<float> interleaved, ReadOnlySpan<long> timestampsMs)
    {
        var frames = interleaved.Length / _channels;
        _hasTimestamps = !timestampsMs.IsEmpty;
        var skip = Math.Max(0, frames - _capacity); // frames that would be overwritten within this call
        Written += skip;
        for (var f = skip; f < frames; f++)
        {
            var slot = (int)(Written % _capacity);
            interleaved.Slice(f * _channels, _channels).CopyTo(_ring.AsSpan(slot * _channels, _channels));
            _timestamps[slot] = _hasTimestamps ? timestampsMs[f] : 0;
            Written++;
        }
    }

    /// <summary>Copies the held frames out in time order, with the stream index of the first.</summary>
    public (float[] Window, long[] Timestamps, long Start) Snapshot()
    {
        var held = Held;
        var window = new float[held * _channels];
        var stamps = _hasTimestamps ? new long[held] : [];
        var first = Written - held;
        for (var f = 0; f < held; f++)
        {
            var slot = (int)((first + f) % _capacity);
            _ring.AsSpan(slot * _channels, _channels).CopyTo(window.AsSpan(f * _channels));
            if (_hasTimestamps)
            {
                stamps[f] = _timestamps[slot];
            }
        }

        return (window, stamps, first);
    }

    public void Clear()
    {
        Written = 0;
        _hasTimestamps = false;
    }
}

/// <summary>The latest model outputs (predicted class, confidence, entropy) of a stream or a fleet. Not thread-safe.</summary>
internal sealed class OutputRing
{
    private readonly int[] _classes;
    private readonly float[] _confidence;
    private readonly float[] _entropy;
    private readonly DriftAlarm?[] _alarms;
    private long _written;

    public OutputRing(int capacity)
    {
        _classes = new int[capacity];
        _confidence = new float[capacity];
        _entropy = new float[capacity];
        _alarms = new DriftAlarm?[capacity];
    }

    public int Count => (int)Math.Min(_written, _classes.Length);

    /// <summary>Records one prediction (no allocation).</summary>
    public void Add(int predictedClass, float confidence, float entropy, DriftAlarm? alarm = null)
    {
        var slot = (int)(_written % _classes.Length);
        _alarms[slot] = alarm;
        _classes[slot] = predictedClass;
        _confidence[slot] = confidence;
        _entropy[slot] = entropy;
        _written++;
    }

    /// <summary>Copies the held predictions out in time order.</summary>
    public (int[] Classes, float[] Confidence, float[] Entropy, DriftAlarm?[] Alarms) Snapshot()
    {
        var n = Count;
        var classes = new int[n];
        var confidence = new float[n];
        var entropy = new float[n];
        var alarms = new DriftAlarm?[n];
        var first = _written - n;
        for (var i = 0; i < n; i++)
        {
            var slot = (int)((first + i) % _classes.Length);
            classes[i] = _classes[slot];
            confidence[i] = _confidence[slot];
            entropy[i] = _entropy[slot];
            alarms[i] = _alarms[slot];
        }

        return (classes, confidence, entropy, alarms);
    }

    public void Clear() => _written = 0;
}
