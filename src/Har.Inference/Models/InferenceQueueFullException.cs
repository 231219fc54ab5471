namespace Har.Inference;

/// <summary>The micro-batcher's queue is full: the window was not accepted (back off or shed load).</summary>
public sealed class InferenceQueueFullException : Exception
{
    /// <summary>Initializes a new instance of the <see cref="InferenceQueueFullException"/> class.</summary>
    internal InferenceQueueFullException()
    {
    }

    /// <summary>Initializes a new instance of the <see cref="InferenceQueueFullException"/> class.</summary>
    /// <param name="message">What was rejected and why.</param>
    internal InferenceQueueFullException(string message)
        : base(message)
    {
    }

    /// <summary>Initializes a new instance of the <see cref="InferenceQueueFullException"/> class.</summary>
    /// <param name="message">What was rejected and why.</param>
    /// <param name="innerException">The underlying error.</param>
    internal InferenceQueueFullException(string message, Exception innerException)
        : base(message, innerException)
    {
    }
}
