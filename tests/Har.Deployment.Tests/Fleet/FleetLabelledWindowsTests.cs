using System.Diagnostics;
using Har.Audit;
using Har.Deployment.Tests.Feedback;
using Har.Deployment.Tests.Support;
using Har.Inference;
using Har.Testing;
using Npgsql;

namespace Har.Deployment.Tests.Fleet;

/// <summary>
/// The leader of a real PostgreSQL fleet counts the windows labelled anywhere in the fleet once each: its own (labelled
/// in its memory, written to <c>har_fleet.labelled_windows</c> like any replica's) are never read back, the other
/// replicas' are read once, and a controller opened again on the same pipeline (a new replica name) reads neither again.
/// </summary>
public sealed class FleetLabelledWindowsTests(PostgresCluster cluster)
{
    private static readonly TimeSpan Generous = TimeSpan.FromSeconds(120);

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task Leader_CountsItsOwnWindowsOnce_OtherReplicasOnce_AlsoWithItsControllerOpenedAgain()
    {
        await using var seeded = await SeedAsync();
        var (connectionString, registry, pipeline) = (seeded.ConnectionString, seeded.Registry, seeded.Pipeline);
        using var other = FleetStore.Open(connectionString); // another replica, writing under its own name
        var replica = await LeadAsync(registry, pipeline, connectionString);
        try
        {
            Assert.Equal(12, await ServeAndLabelAsync(pipeline, "here", 12));
            Assert.Equal(12, Labelled(pipeline));
            await WaitUntilAsync(() => Rows(connectionString) == 12, "the leader's own 12 windows in the table");

            other.WriteLabelledWindows(Windows(5), keep: 1_000);
            await replica.Controller.ReconcileAsync(Ct); // a whole round: the leader reads what it has not read yet
            Assert.Equal(17, Labelled(pipeline));
            await replica.Controller.ReconcileAsync(Ct);
            Assert.Equal(17, Labelled(pipeline));

            // Closed and opened again on the same pipeline: a new replica name, the same windows held.
            await replica.DisposeAsync();
            replica = await LeadAsync(registry, pipeline, connectionString);
            other.WriteLabelledWindows(Windows(1), keep: 1_000);
            await replica.Controller.ReconcileAsync(Ct);
            Assert.Equal(18, Labelled(pipeline));
            Assert.Equal(18, Rows(connectionString));
        }
        finally
        {
            await replica.DisposeAsync();
        }
    }

    [Fact]
    public async Task WindowsLabelledAndLabelsReceived_BeforeTheReplicasFirstRound_ReachTheFleet()
    {
        // Found backing up a replica: the store began keeping windows for the table (and labels for the other replicas)
        // at the replica's first round, so what came between the controller's start and that round stayed on this
        // replica alone — missing from the leader's accuracy gate, from a backup, and from the replicas holding the
        // labelled stream's windows.
        await using var seeded = await SeedAsync();
        var pipeline = seeded.Pipeline;
        await using var controller = await RolloutController.OpenAsync(seeded.Registry, pipeline, TestRegistry.Options(o => o.ConnectionString = seeded.ConnectionString), cancellationToken: Ct);
        Assert.Equal(6, await ServeAndLabelAsync(pipeline, "here", 6));
        Assert.Equal(0, pipeline.Feedback.Report("served-elsewhere", "SITTING", 0, 1_000)); // its windows are on another replica

        await controller.ReconcileAsync(Ct); // the first round
        Assert.Equal(6, Rows(seeded.ConnectionString));
        await using var connection = new NpgsqlConnection(seeded.ConnectionString);
        await connection.OpenAsync(Ct);
        await using var forwarded = new NpgsqlCommand("SELECT count(*) FROM har_fleet.feedback_labels, jsonb_array_elements(payload) AS l WHERE l->>'StreamId' = 'served-elsewhere'", connection);
        Assert.Equal(1L, (long)(await forwarded.ExecuteScalarAsync(Ct))!);
    }

    [Fact]
    public async Task WriteLabelledWindows_DatabaseRefuses_TheWindowsWaitAndAreWrittenNextTime_InOrder()
    {
        var connectionString = await cluster.CreateDatabaseAsync();
        using var fleet = FleetStore.Open(connectionString);
        var store = new FeedbackStore(["WALKING", "SITTING"], 128, 50, _ => null, TimeProvider.System);
        store.WriteLabelledWindows(fleet); // a replica's first round: from now on the store keeps the windows labelled for the table
        store.Record("d1", TestRegistry.Champion, [0, 64, 128], [.. Enumerable.Range(0, 3).Select(_ => TestPrediction.Of(0, "WALKING", TestRegistry.Champion))]);
        Assert.Equal(2, store.Report("d1", "WALKING", 0, 192));

        await ExecuteAsync(connectionString, "ALTER TABLE har_fleet.labelled_windows RENAME TO elsewhere");
        var refused = Assert.Throws<IOException>(() => store.WriteLabelledWindows(fleet));
        Assert.Contains("cannot be reached", refused.Message, StringComparison.Ordinal);

        await ExecuteAsync(connectionString, "ALTER TABLE har_fleet.elsewhere RENAME TO labelled_windows");
        Assert.Equal(1, store.Report("d1", "SITTING", 128, 256));
        store.WriteLabelledWindows(fleet);
        var (_, windows, _) = fleet.ReadLabelledWindows(0, []);
        Assert.Equal(["WALKING", "WALKING", "SITTING"], windows.Select(w => w.Truth));
    }

    /// <summary>A new database, and a replica's registry (the bundled champion seeded) and pipeline on it, in a folder removed at dispose.</summary>
    private async Task<Seeded> SeedAsync()
    {
        var connectionString = await cluster.CreateDatabaseAsync();
        var root = Directory.CreateTempSubdirectory("har-fleet-labels-").FullName;
        var audit = AuditLog.Open(new AuditLogOptions { ConnectionString = connectionString, EnableMetrics = false });
        var registry = new ModelRegistry(Path.Combine(root, "registry"), audit);
        registry.Seed([TestRegistry.ChampionFile]);
        return new Seeded(connectionString, root, audit, registry, ServingPipeline.Open(registry, TestRegistry.ServingOptions()));
    }

    private static async Task ExecuteAsync(string connectionString, string sql)
    {
        await using var connection = new NpgsqlConnection(connectionString);
        await connection.OpenAsync(Ct);
        await using var command = new NpgsqlCommand(sql, connection);
        await command.ExecuteNonQueryAsync(Ct);
    }

    private static async Task<Replica> LeadAsync(ModelRegistry registry, ServingPipeline pipeline, string connectionString)
    {
        var controller = await RolloutController.OpenAsync(registry, pipeline, TestRegistry.Options(o => o.ConnectionString = connectionString), cancellationToken: Ct);
        var stop = new CancellationTokenSource();
        var replica = new Replica(controller, stop, controller.RunAsync(stop.Token));
        await WaitUntilAsync(() => controller.IsLeader, "the only replica to lead");
        return replica;
    }

    /// <summary>Serves <paramref name="count"/> random windows of <paramref name="stream"/> and labels them WALKING by time; returns the windows labelled.</summary>
    internal static async Task<int> ServeAndLabelAsync(ServingPipeline pipeline, string stream, int count)
    {
        var values = pipeline.Geometry.WindowValues;
        var rng = new Random(count);
        var window = new float[values];
        var from = DateTimeOffset.UtcNow.AddMinutes(-1);
        for (var w = 0; w < count; w++)
        {
            for (var i = 0; i < values; i++)
            {
                window[i] = (float)(rng.NextDouble() * 2 - 1);
            }

            await pipeline.PredictAsync(stream, window, new Prediction[1], Ct);
        }

        return pipeline.Feedback.Report(stream, "WALKING", from, DateTimeOffset.UtcNow.AddMinutes(1));
    }

    private static List<ShippedLabel> Windows(int count) =>
        [.. Enumerable.Range(0, count).Select(_ => new ShippedLabel("WALKING", [new ShippedPrediction(TestRegistry.Champion, "SITTING")]))];

    private static long Labelled(ServingPipeline pipeline) => pipeline.Feedback.Accuracy(TestRegistry.Champion).Labelled;

    private static long Rows(string connectionString)
    {
        using var connection = new NpgsqlConnection(connectionString);
        connection.Open();
        using var count = new NpgsqlCommand("SELECT count(*) FROM har_fleet.labelled_windows", connection);
        return (long)count.ExecuteScalar()!;
    }

    private static async Task WaitUntilAsync(Func<bool> condition, string what)
    {
        var clock = Stopwatch.StartNew();
        while (!condition())
        {
            Assert.True(clock.Elapsed < Generous, $"Not reached within {Generous.TotalSeconds:0} s: {what}.");
            await Task.Delay(50, Ct);
        }
    }

    private sealed class Replica(RolloutController controller, CancellationTokenSource stop, Task loop)
    {
        private bool _disposed;

        public RolloutController Controller => controller;

        /// <summary>A clean shutdown: the loop stops, then the controller (the pipeline stays).</summary>
        public async Task DisposeAsync()
        {
            if (_disposed)
            {
                return;
            }

            _disposed = true;
            await stop.CancelAsync();
            await loop;
            await controller.DisposeAsync();
            stop.Dispose();
        }
    }

    private sealed record Seeded(string ConnectionString, string Root, AuditLog Audit, ModelRegistry Registry, ServingPipeline Pipeline) : IAsyncDisposable
    {
        public async ValueTask DisposeAsync()
        {
            await Pipeline.DisposeAsync();
            await Audit.DisposeAsync();
            Directory.Delete(Root, recursive: true);
        }
    }
}
