namespace Har.Drift.Tests.Physics;

/// <summary>Reference profiles built from the simulated rigid IMU, shared by the physics tests.</summary>
internal static class SimulatedProfiles
{
    private static readonly Lazy<ReferenceProfile> RigidImuProfile = new(() =>
    {
        var builder = new ReferenceProfileBuilder(Synthetic.Channels, new ReferenceProfileOptions { SegmentLength = 1000, MaxSortedSample = 2000 });
        for (var s = 0; s < 8; s++)
        {
            builder.AddRecording($"subject-{s}", SimulatedImu.Record(seed: 200 + s, seconds: 80).Interleaved());
        }

        return builder.Build("simulated rigid IMU");
    });

    /// <summary>Gets the profile of eight simulated 80-second recordings (seeds 200–207).</summary>
    public static ReferenceProfile RigidImu => RigidImuProfile.Value;
}
