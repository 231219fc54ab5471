namespace Har.Inference;

/// <summary>
/// A new stream was refused: <see cref="StreamWindowerOptions.MaxStreams"/> streams are buffered and none was idle
/// long enough to evict. Nothing was appended; a host answers 503 (or 429) with <c>Retry-After</c>.
/// </summary>
public sealed class StreamLimitExceededException : InvalidOperationException
{
    /// <summary>Initializes a new instance of the <see cref="StreamLimitExceededException"/> class.</summary>
    internal StreamLimitExceededException()
    {
    }

    /// <summary>Initializes a new instance of the <see cref="StreamLimitExceededException"/> class.</summary>
    /// <param name="message">What was refused and why.</param>
    internal StreamLimitExceededException(string message)
        : base(message)
    {
    }

    /// <summary>Initializes a new instance of the <see cref="StreamLimitExceededException"/> class.</summary>
    /// <param name="message">What was refused and why.</param>
    /// <param name="innerException">The underlying error.</param>
    internal StreamLimitExceededException(string message, Exception innerException)
        : base(message, innerException)
    {
    }

    internal StreamLimitExceededException(int limit, string streamId)
        : base($"Cannot start stream '{streamId}': {limit} streams are buffered and the limit is {limit} (StreamWindowerOptions.MaxStreams); no stream was idle long enough to evict (StreamWindowerOptions.MinimumIdleForEviction). Retry later, remove finished streams or raise the limit.")
    {
        Limit = limit;
    }

    /// <summary>Gets the stream limit (<see cref="StreamWindowerOptions.MaxStreams"/>).</summary>
    internal int Limit { get; }
}

/// <summary>
/// An append was refused because it would complete more windows than <see cref="StreamWindowerOptions.MaxWindowsPerAppend"/>.
/// Nothing was appended; a host answers 413 naming <see cref="Limit"/>.
/// </summary>
public sealed class WindowLimitExceededException : ArgumentException
{
    /// <summary>Initializes a new instance of the <see cref="WindowLimitExceededException"/> class.</summary>
    internal WindowLimitExceededException()
    {
    }

    /// <summary>Initializes a new instance of the <see cref="WindowLimitExceededException"/> class.</summary>
    /// <param name="message">What was refused and why.</param>
    internal WindowLimitExceededException(string message)
        : base(message)
    {
    }

    /// <summary>Initializes a new instance of the <see cref="WindowLimitExceededException"/> class.</summary>
    /// <param name="message">What was refused and why.</param>
    /// <param name="innerException">The underlying error.</param>
    internal WindowLimitExceededException(string message, Exception innerException)
        : base(message, innerException)
    {
    }

    internal WindowLimitExceededException(int limit, long windows, string streamId)
        : base($"Stream '{streamId}': the append would complete {windows} windows; at most {limit} per append are accepted (StreamWindowerOptions.MaxWindowsPerAppend). Nothing was appended; send the frames in smaller chunks.", "frames")
    {
        Limit = limit;
        Windows = windows;
    }

    /// <summary>Gets the most windows one append may complete.</summary>
    internal int Limit { get; }

    /// <summary>Gets the number of windows the refused append would have completed.</summary>
    internal long Windows { get; }
}
