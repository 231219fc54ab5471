using System.ComponentModel.DataAnnotations;

namespace Har.Inference;

/// <summary>What a <see cref="StreamWindower"/> does with samples that are NaN or infinite.</summary>
public enum InvalidSampleHandling
{
    /// <summary>Reject the whole append with an <see cref="ArgumentException"/> naming the frame and channel; nothing is buffered.</summary>
    Throw,

    /// <summary>Buffer the frames but drop (and count in <see cref="StreamWindower.DroppedWindows"/>) every window that contains one.</summary>
    DropWindow,
}

/// <summary>Options of a <see cref="StreamWindower"/>.</summary>
public sealed class StreamWindowerOptions
{
    /// <summary>Gets or sets what happens to NaN or infinite samples.</summary>
    /// <value>The default value is <see cref="InvalidSampleHandling.Throw"/>.</value>
    [EnumDataType(typeof(InvalidSampleHandling), ErrorMessage = "StreamWindowerOptions.InvalidSamples must be Throw or DropWindow.")]
    public InvalidSampleHandling InvalidSamples { get; set; } = InvalidSampleHandling.Throw;

    /// <summary>
    /// Gets or sets the maximum number of streams buffered at once. A new stream beyond it first evicts streams idle
    /// for <see cref="IdleTimeout"/>, then the least recently used stream silent for <see cref="MinimumIdleForEviction"/>;
    /// if there is none, the append throws <see cref="StreamLimitExceededException"/>.
    /// </summary>
    /// <value>The default value is 10 000.</value>
    [Range(1, int.MaxValue)]
    public int MaxStreams { get; set; } = 10_000;

    /// <summary>
    /// Gets or sets how long a stream may receive nothing before its buffer is evicted. With the system clock, a
    /// timeout of 10 s or more is timed by a shared heartbeat that refreshes a cached tick count every 250 ms: a
    /// stream is evicted at the earliest at the timeout and usually within half a second after it (later if the
    /// thread pool was ever too starved to run the heartbeat on time); shorter timeouts are timed to the millisecond.
    /// </summary>
    /// <value>The default value is 5 minutes.</value>
    [Range(typeof(TimeSpan), "00:00:00.001", "10675199.02:48:05.4775807")]
    public TimeSpan IdleTimeout { get; set; } = TimeSpan.FromMinutes(5);

    /// <summary>
    /// Gets or sets how long the least recently used stream must have been silent to be evicted for a new stream at
    /// <see cref="MaxStreams"/>; <see cref="TimeSpan.Zero"/> evicts the least recently used stream whatever its age.
    /// </summary>
    /// <value>The default value is 10 seconds.</value>
    [Range(typeof(TimeSpan), "00:00:00", "10675199.02:48:05.4775807")]
    public TimeSpan MinimumIdleForEviction { get; set; } = TimeSpan.FromSeconds(10);

    /// <summary>
    /// Gets or sets the most windows one append may complete; a larger append throws
    /// <see cref="WindowLimitExceededException"/> and appends nothing (so one client cannot fill the batcher's queue).
    /// </summary>
    /// <value>The default value is 1024 (the default <see cref="HarModelOptions.QueueCapacity"/>).</value>
    [Range(1, int.MaxValue)]
    public int MaxWindowsPerAppend { get; set; } = 1024;

    /// <summary>
    /// Gets or sets how many frames before each window the windows hold, for a windower made from a model card. More
    /// than the card's <see cref="ModelCard.ContextFrames"/> lets models that read more context than that model run on
    /// the same windows (a model reads the last context + window frames of each); less is refused.
    /// </summary>
    /// <value>The default value is <see langword="null"/>: the card's <see cref="ModelCard.ContextFrames"/>.</value>
    [Range(0, 1 << 20)]
    public int? ContextFrames { get; set; }
}
