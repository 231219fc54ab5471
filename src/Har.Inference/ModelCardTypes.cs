namespace Har.Inference;

/// <summary>What a model's output tensor holds.</summary>
internal enum ModelOutputKind
{
    /// <summary>Class probabilities (each row sums to 1).</summary>
    Probabilities,

    /// <summary>Unnormalised scores; Har applies a numerically stable softmax.</summary>
    Logits,
}

/// <summary>Validation metrics recorded in a model card (on the held-out test subjects).</summary>
public readonly struct ModelCardMetrics
{
    internal ModelCardMetrics(double accuracy, double macroF1, int windows)
    {
        Accuracy = accuracy;
        MacroF1 = macroF1;
        Windows = windows;
    }

    /// <summary>Gets the fraction of test windows classified correctly.</summary>
    public double Accuracy { get; }

    /// <summary>Gets the unweighted mean of the per-class F1 scores.</summary>
    public double MacroF1 { get; }

    /// <summary>Gets the number of test windows scored.</summary>
    public int Windows { get; }

    /// <summary>Returns the figures, e.g. <c>accuracy 0.928151, macro-F1 0.880517 on 2380 windows</c>.</summary>
    /// <returns>A one-line summary.</returns>
    public override string ToString() =>
        string.Create(System.Globalization.CultureInfo.InvariantCulture, $"accuracy {Accuracy:0.000000}, macro-F1 {MacroF1:0.000000} on {Windows} windows");
}

/// <summary>A model card is missing, malformed, or disagrees with the model's graph.</summary>
public sealed class ModelCardException : Exception
{
    /// <summary>Initializes a new instance of the <see cref="ModelCardException"/> class.</summary>
    internal ModelCardException()
    {
    }

    /// <summary>Initializes a new instance of the <see cref="ModelCardException"/> class.</summary>
    /// <param name="message">What was wrong and what was expected.</param>
    internal ModelCardException(string message)
        : base(message)
    {
    }

    /// <summary>Initializes a new instance of the <see cref="ModelCardException"/> class.</summary>
    /// <param name="message">What was wrong and what was expected.</param>
    /// <param name="innerException">The underlying error.</param>
    internal ModelCardException(string message, Exception innerException)
        : base(message, innerException)
    {
    }

    /// <summary>Initializes a new instance of the <see cref="ModelCardException"/> class.</summary>
    /// <param name="key">The card key at fault, or <see langword="null"/> for a graph-level problem.</param>
    /// <param name="message">What was wrong and what was expected.</param>
    /// <param name="innerException">The underlying error, if any.</param>
    public ModelCardException(string? key, string message, Exception? innerException = null)
        : base(message, innerException)
    {
        Key = key;
    }

    /// <summary>Gets the card key at fault, or <see langword="null"/> when the problem is not tied to one key.</summary>
    public string? Key { get; }
}
