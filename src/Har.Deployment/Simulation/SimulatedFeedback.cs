namespace Har.Deployment;

/// <summary>
/// Delayed ground truth for a simulated run: a share of the served windows whose truth is known (e.g. the
/// HAPT labels) is reported to the run's <see cref="FeedbackStore"/> a fixed delay after it was served,
/// as a frame range of the device's stream, exactly as <c>POST /v1/feedback</c> would. Every version's
/// prediction on the window (served, shadow, mirror) is recorded in the store first, so the label joins
/// all of them.
/// </summary>
internal sealed class SimulatedFeedback : ISimulationFeedback
{
    private readonly FeedbackStore _store;
    private readonly int[] _truth;
    private readonly int _windowLength;
    private readonly int _stride;
    private readonly double _share;
    private readonly TimeSpan _delay;
    private readonly Random _random;
    private readonly Dictionary<string, Device> _devices = new(StringComparer.Ordinal);
    private readonly Queue<(DateTimeOffset Due, string Device, long Start, int Truth)> _pending = new();

    /// <summary>Initializes a new instance of the <see cref="SimulatedFeedback"/> class.</summary>
    /// <param name="context">The run.</param>
    /// <param name="share">The share of served windows with a known truth that get a label (0 … 1).</param>
    /// <param name="delay">How long after the window was served its label arrives.</param>
    public SimulatedFeedback(SimulationFeedbackContext context, double share, TimeSpan delay)
    {
        ArgumentNullException.ThrowIfNull(context);
        if (!(share is >= 0 and <= 1))
        {
            throw new ArgumentOutOfRangeException(nameof(share), share, "The labelled share must be a fraction in [0, 1], e.g. 0.10.");
        }

        ArgumentOutOfRangeException.ThrowIfLessThan(delay, TimeSpan.Zero);
        _store = context.Serving.Feedback;
        _truth = context.WindowTruth;
        _windowLength = context.WindowLength;
        _stride = context.Stride;
        _share = share;
        _delay = delay;
        _random = new Random(unchecked((context.Seed * 7919) + 17));
    }

    /// <inheritdoc />
    public TimeSpan Delay => _delay;

    /// <summary>Gets the number of labels reported so far.</summary>
    public int Reported { get; private set; }

    /// <summary>Returns the scenario hook that gives each run a feeder with <paramref name="share"/> and <paramref name="delay"/>.</summary>
    /// <param name="share">The share of served windows with a known truth that get a label, e.g. 0.10.</param>
    /// <param name="delay">How late the labels arrive, e.g. one minute.</param>
    /// <returns>The value for <see cref="SimulationScenario.Feedback"/>.</returns>
    public static Func<SimulationFeedbackContext, ISimulationFeedback?> Labels(double share, TimeSpan delay) =>
        context => new SimulatedFeedback(context, share, delay);

    public void OnServed(string deviceId, int window, string version, PredictionRole role, int predicted, DateTimeOffset now)
    {
        if (!_devices.TryGetValue(deviceId, out var device))
        {
            device = new Device();
            _devices.Add(deviceId, device);
        }

        if (role == PredictionRole.Served)
        {
            // The device's stream advances one stride per window it sends; its shadow or mirror run scores the same window.
            device.Start = device.Next;
            device.Window = window;
            device.Next += _stride;
            var truth = (uint)window < (uint)_truth.Length ? _truth[window] : -1;
            if (truth >= 0 && _random.NextDouble() < _share)
            {
                _pending.Enqueue((now + _delay, deviceId, device.Start, truth));
            }
        }
        else if (device.Window != window)
        {
            return; // a shadow run of a window this feeder never saw served
        }

        _store.Record(deviceId, device.Start, version, predicted, now);
    }

    public int Deliver(DateTimeOffset now)
    {
        var labelled = 0;
        while (_pending.TryPeek(out var label) && label.Due <= now)
        {
            _pending.Dequeue();
            labelled += _store.Report(label.Device, _store.Activities[label.Truth], label.Start, label.Start + _windowLength);
            Reported++;
        }

        return labelled;
    }

    private sealed class Device
    {
        public long Next;
        public long Start = -1;
        public int Window = -1;
    }
}
