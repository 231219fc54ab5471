namespace Har.Deployment;

/// <summary>
/// What the control plane (the <see cref="RolloutController"/>) may do to the serving path: load and
/// unload versions, publish a whole new traffic plan, and read (and reset) the observations the
/// pipeline's observers collected. Nothing else of the controller is on the prediction path.
/// </summary>
internal interface IServingControl
{
    /// <summary>The resident model versions.</summary>
    IModelVersionHost Models { get; }

    /// <summary>Per-version observations, fed by the pipeline's rollout observer.</summary>
    RolloutObservations Observations { get; }

    /// <summary>The ground-truth feedback joined to every version's predictions (read by the accuracy gate), if any.</summary>
    FeedbackStore? Feedback { get; }

    /// <summary>The window geometry the pipeline serves; a version with another one cannot be served.</summary>
    WindowGeometry Geometry { get; }

    /// <summary>The plan in force.</summary>
    TrafficPlan Plan { get; }

    /// <summary>Replaces the plan atomically (every version it names must be resident).</summary>
    void Publish(TrafficPlan plan);
}
