using System.Text.Json;
using Har.Inference.Data;
using Har.Testing;
using Npgsql;

namespace Har.Service.Tests.Streams;

/// <summary>
/// In a fleet (<c>ConnectionStrings:Har</c>) each device's drift state lives in the fleet's PostgreSQL, so it follows a
/// device the proxy moves to another replica. Before it, each replica kept its own file: a device whose replica stopped
/// (or whose pod a redeploy renamed, or whose hash-ring slot moved) started fresh on its new replica, and its raised
/// alarm was silently lowered there.
/// </summary>
public sealed class DriftStateFleetTests(PostgresCluster cluster)
{
    private const string Faulty = "ay-stuck";

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task DeviceAlarmedOnReplica1_Replica1Stopped_TheDeviceStreamsToReplica2_WhichListsTheAlarmRaised()
    {
        var (test, connectionString, work) = await PrepareAsync();
        using var deadline = CancellationTokenSource.CreateLinkedTokenSource(Ct);
        deadline.CancelAfter(TimeSpan.FromMinutes(6)); // against a hang
        ServiceProcess? replica1 = null;
        ServiceProcess? replica2 = null;
        try
        {
            // Two replicas on one database, each with its own data folder and the fleet's one signing key (as
            // scripts/fleet-local.sh runs them); replica 2 runs from the start and never sees the device on replica 1.
            var keys = Directory.CreateDirectory(Path.Combine(work.FullName, "keys"));
            replica1 = await StartReplicaAsync(work, keys, 1, connectionString);
            replica2 = await StartReplicaAsync(work, keys, 2, connectionString);
            string cause;
            using (var client = replica1.CreateClient())
            {
                await DriftStateRestartTests.PostAsync(client, Faulty, DriftStateRestartTests.Stuck(test[0].Samples[..(1000 * 6)]), deadline.Token);
                var alarm = await WaitForAlarmAsync(client, deadline.Token);
                cause = alarm.GetProperty("cause").GetString()!;
                Assert.Equal("Stuck", cause);

                // The tick that raised the alarm saves the device at its end (an alarm change is saved at once).
                while (!await StoredAsync(connectionString, Faulty, deadline.Token))
                {
                    await Task.Delay(200, deadline.Token);
                }
            }

            // Replica 1 stops: SIGKILL, no graceful shutdown.
            await replica1.DisposeAsync();
            replica1 = null;

            // The device's next minute reaches replica 2. The sensor works again (its frames are healthy), but one good
            // minute does not lower an alarm raised on the evidence of earlier ones: a fresh replica would have no alarm.
            using var again = replica2.CreateClient();
            await DriftStateRestartTests.PostAsync(again, Faulty, test[1].Samples[..(500 * 6)], deadline.Token);
            // Replica 2 scores that minute (its first scoring: it has seen no other device); the restored report alone
            // would already show the alarm, so the report read is the one of the new minute.
            while (!(await again.GetStringAsync("/metrics", deadline.Token)).Contains("har_drift_scorings_total{monitor=\"streams\"} 1", StringComparison.Ordinal))
            {
                await Task.Delay(200, deadline.Token);
            }

            JsonElement report;
            using (var drift = JsonDocument.Parse(await again.GetStringAsync($"/v1/drift?device={Faulty}", deadline.Token)))
            {
                Assert.True(drift.RootElement.GetProperty("scored").GetBoolean());
                report = drift.RootElement.GetProperty("report").Clone();
            }

            Assert.True(report.GetProperty("alarm").GetProperty("raised").GetBoolean(), report.GetProperty("alarm").ToString());
            Assert.Equal(cause, report.GetProperty("alarm").GetProperty("cause").GetString());
            using (var alarms = JsonDocument.Parse(await again.GetStringAsync("/v1/drift/alarms", deadline.Token)))
            {
                var item = Assert.Single(alarms.RootElement.GetProperty("alarmed").EnumerateArray());
                Assert.Equal(Faulty, item.GetProperty("device").GetString());
                Assert.Equal(cause, item.GetProperty("alarm").GetProperty("cause").GetString());
            }

            var metrics = await again.GetStringAsync("/metrics", deadline.Token);
            Assert.Contains("har_drift_state_restores_total{monitor=\"streams\",result=\"restored\"} 1", metrics, StringComparison.Ordinal);
            Assert.Contains("har_drift_devices_alarmed_by_cause{monitor=\"streams\",cause=\"Stuck\"} 1", metrics, StringComparison.Ordinal);
        }
        finally
        {
            if (replica1 is not null)
            {
                await replica1.DisposeAsync();
            }

            if (replica2 is not null)
            {
                await replica2.DisposeAsync();
            }

            work.Delete(recursive: true);
        }
    }

    [Fact]
    public async Task DeviceMovedToReplica2AndAlarmedThere_Replica1StoppedGracefully_ItsOlderCopyDoesNotLowerTheAlarm()
    {
        // A rolling redeploy: the hash ring moves a device from replica 1 to a new replica 2, where its alarm is raised;
        // then replica 1 is stopped (SIGTERM) and saves every device it still holds — this one too, from before the move.
        // Before, that save replaced replica 2's row (the last writer won): the alarm was gone from the store, and the
        // replica the device reached next listed it healthy.
        var (test, connectionString, work) = await PrepareAsync();
        using var deadline = CancellationTokenSource.CreateLinkedTokenSource(Ct);
        deadline.CancelAfter(TimeSpan.FromMinutes(6)); // against a hang
        var replicas = new List<ServiceProcess>();
        try
        {
            var keys = Directory.CreateDirectory(Path.Combine(work.FullName, "keys"));
            var replica1 = await StartReplicaAsync(work, keys, 1, connectionString);
            replicas.Add(replica1);
            var replica2 = await StartReplicaAsync(work, keys, 2, connectionString);
            replicas.Add(replica2);

            // Healthy on replica 1, scored there (and not saved: no alarm changed, the save interval has not passed).
            using (var client = replica1.CreateClient())
            {
                await DriftStateRestartTests.PostAsync(client, Faulty, test[1].Samples[..(500 * 6)], deadline.Token);
                while (!(await client.GetStringAsync("/metrics", deadline.Token)).Contains("har_drift_scorings_total{monitor=\"streams\"} 1", StringComparison.Ordinal))
                {
                    await Task.Delay(200, deadline.Token);
                }
            }

            Assert.Null(await StoredRowAsync(connectionString, Faulty, deadline.Token));

            // Moved to replica 2, where the sensor is stuck: the alarm is raised and saved at once.
            using (var client = replica2.CreateClient())
            {
                await DriftStateRestartTests.PostAsync(client, Faulty, DriftStateRestartTests.Stuck(test[0].Samples[..(1000 * 6)]), deadline.Token);
                Assert.Equal("Stuck", (await WaitForAlarmAsync(client, deadline.Token)).GetProperty("cause").GetString());
            }

            var saved = await StoredRowAsync(connectionString, Faulty, deadline.Token);
            while (saved is null)
            {
                await Task.Delay(200, deadline.Token);
                saved = await StoredRowAsync(connectionString, Faulty, deadline.Token);
            }

            // Replica 1 stops gracefully and saves what it holds.
            using (var term = System.Diagnostics.Process.Start("kill", ["-TERM", replica1.ProcessId.ToString(System.Globalization.CultureInfo.InvariantCulture)]))
            {
                await term.WaitForExitAsync(deadline.Token);
            }

            while (!replica1.HasExited)
            {
                await Task.Delay(100, deadline.Token);
            }

            Assert.Equal(saved, await StoredRowAsync(connectionString, Faulty, deadline.Token));

            // Replica 2 is lost too (SIGKILL); the device reaches a third replica with a healthy minute: its alarm stands.
            await replica2.DisposeAsync();
            replicas.Remove(replica2);
            var replica3 = await StartReplicaAsync(work, keys, 3, connectionString);
            replicas.Add(replica3);
            using var third = replica3.CreateClient();
            await DriftStateRestartTests.PostAsync(third, Faulty, test[1].Samples[(500 * 6)..(1000 * 6)], deadline.Token);
            var alarm = await WaitForAlarmAsync(third, deadline.Token);
            Assert.Equal("Stuck", alarm.GetProperty("cause").GetString());
        }
        finally
        {
            foreach (var replica in replicas)
            {
                await replica.DisposeAsync();
            }

            work.Delete(recursive: true);
        }
    }

    /// <summary>The HAPT test recordings, a new database, and a work folder holding a profile of the training recordings (skips without ../shared/data).</summary>
    private async Task<(List<SensorSession> Test, string ConnectionString, DirectoryInfo Work)> PrepareAsync()
    {
        var hapt = TestPaths.RequireSharedData();
        var connectionString = await cluster.CreateDatabaseAsync();
        var test = SensorDataset.Load(hapt, "test", cancellationToken: Ct);
        var work = Directory.CreateTempSubdirectory("har-drift-fleet-");
        DriftStateRestartTests.SaveHaptProfile(SensorDataset.Load(hapt, "train", cancellationToken: Ct), Path.Combine(work.FullName, "profile.json"));
        return (test, connectionString, work);
    }

    /// <summary>The device's stored row (replica, when saved, SHA-256 of its state), or null when it has none.</summary>
    private static async Task<string?> StoredRowAsync(string connectionString, string device, CancellationToken ct)
    {
        await using var connection = new NpgsqlConnection(connectionString);
        await connection.OpenAsync(ct);
        await using var command = new NpgsqlCommand("SELECT replica || ' ' || saved_at::text || ' ' || encode(sha256(state), 'hex') FROM har_fleet.drift_devices WHERE device_id = $1", connection);
        command.Parameters.Add(new NpgsqlParameter<string> { TypedValue = device });
        return await command.ExecuteScalarAsync(ct) as string;
    }

    private static async Task<ServiceProcess> StartReplicaAsync(DirectoryInfo work, DirectoryInfo keys, int index, string connectionString)
    {
        var data = Directory.CreateDirectory(Path.Combine(work.FullName, $"replica-{index}"));
        Directory.CreateSymbolicLink(Path.Combine(data.FullName, "keys"), keys.FullName);
        return await ServiceProcess.StartAsync(
            new Dictionary<string, string>
            {
                ["Har:Service:DataDirectory"] = data.FullName,
                ["Har:Service:DriftProfilePath"] = Path.Combine(work.FullName, "profile.json"),
                ["Har:Service:DriftWindowFrames"] = "500",
                ["Har:Service:DriftScoreInterval"] = "00:00:01",
            },
            environment: new Dictionary<string, string> { ["ConnectionStrings__Har"] = connectionString },
            cancellationToken: Ct);
    }

    /// <summary>Polls <c>GET /v1/drift/alarms</c> until the faulty device is listed; returns its alarm.</summary>
    private static async Task<JsonElement> WaitForAlarmAsync(HttpClient client, CancellationToken ct)
    {
        while (true)
        {
            using var alarms = JsonDocument.Parse(await client.GetStringAsync("/v1/drift/alarms", ct));
            foreach (var a in alarms.RootElement.GetProperty("alarmed").EnumerateArray())
            {
                if (a.GetProperty("device").GetString() == Faulty)
                {
                    return a.GetProperty("alarm").Clone();
                }
            }

            await Task.Delay(200, ct);
        }
    }

    private static async Task<bool> StoredAsync(string connectionString, string device, CancellationToken ct)
    {
        await using var connection = new NpgsqlConnection(connectionString);
        await connection.OpenAsync(ct);
        await using var command = new NpgsqlCommand("SELECT EXISTS (SELECT 1 FROM har_fleet.drift_devices WHERE device_id = $1)", connection);
        command.Parameters.Add(new NpgsqlParameter<string> { TypedValue = device });
        return await command.ExecuteScalarAsync(ct) is true;
    }
}
