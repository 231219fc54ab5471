using System.Diagnostics;
using System.Globalization;
using Har.Audit;
using Har.Deployment;
using Npgsql;

namespace Har.Benchmarks.Fleet;

/// <summary>
/// The fleet's control plane, measured with real processes on one PostgreSQL: R replicas (this executable in
/// <c>fleet-replica</c> mode: registry in its own folder seeded with the bundled models, audit log and control plane in
/// the database, the serving pipeline and the rollout controller with their default lease and polling) report on stdout,
/// with the machine's monotonic clock, every change of the rollout state they follow and of their leadership.
/// <list type="bullet">
/// <item>Propagation: a canary is started, then pause and resume alternate, each sent to the next replica in turn; for
/// each change, the time from its acknowledgement by the replica that made it (committed) until every other replica
/// follows the new state (its traffic plan is published from that state in the same step).</item>
/// <item>Failover: the leader is killed with SIGKILL; the time until another replica leads. The killed replica is started
/// again on its folder before the next kill.</item>
/// </list>
/// Usage: <c>fleet-control &lt;connection string&gt; [changes=60] [failovers=5] [replicas=3]</c>
/// (see <c>benchmarks/results/Fleet/run-fleet.sh</c>).
/// </summary>
internal static class FleetControlRunner
{
    private static readonly TimeSpan Bound = TimeSpan.FromMinutes(5);

    public static int Run(string[] args)
    {
        if (args.Length < 2)
        {
            Console.Error.WriteLine("usage: fleet-control <connection string> [changes=60] [failovers=5] [replicas=3]");
            return 2;
        }

        var cs = args[1];
        var changes = args.Length > 2 ? int.Parse(args[2], CultureInfo.InvariantCulture) : 60;
        var failovers = args.Length > 3 ? int.Parse(args[3], CultureInfo.InvariantCulture) : 5;
        var count = args.Length > 4 ? int.Parse(args[4], CultureInfo.InvariantCulture) : 3;
        var models = FindModels();
        Reset(cs);
        var root = Directory.CreateTempSubdirectory("har-fleet-bench-").FullName;
        var replicas = new FleetProcess[count];
        try
        {
            for (var i = 0; i < count; i++)
            {
                replicas[i] = StartReplica(cs, root, i + 1, models);
            }

            foreach (var r in replicas)
            {
                r.WaitFor(l => l.StartsWith("READY", StringComparison.Ordinal), Bound);
            }

            var leader = WaitForLeader(replicas, since: 0);
            Console.Error.WriteLine($"{count} replicas ready; {replicas[leader].Name} leads");

            // The canary, started through replica 1, then pause/resume alternately through each replica.
            var every = new List<double>();
            var each = new List<double>();
            for (var i = -1; i < changes; i++)
            {
                var origin = i < 0 ? 0 : i % count;
                var command = i < 0 ? "start" : i % 2 == 0 ? "pause" : "resume";
                var (revision, acknowledged) = Command(replicas[origin], command);
                var slowest = 0.0;
                for (var k = 0; k < count; k++)
                {
                    if (k == origin)
                    {
                        continue;
                    }

                    var seen = replicas[k].WaitFor(l => l.StartsWith("REV ", StringComparison.Ordinal) && FleetProcess.Long(l, 2) >= revision, Bound);
                    var lag = Math.Max(0, FleetProcess.Ms(FleetProcess.Long(seen, 3) - acknowledged));
                    each.Add(lag);
                    slowest = Math.Max(slowest, lag);
                }

                if (i >= 0)
                {
                    every.Add(slowest);
                }
            }

            // Failovers: SIGKILL the leader, time until another replica leads; the killed one restarts on its folder.
            var takeovers = new List<double>();
            for (var f = 0; f < failovers; f++)
            {
                leader = WaitForLeader(replicas, since: 0);
                Thread.Sleep(TimeSpan.FromSeconds(1 + f)); // different points of the lease's renewal cycle
                var killedAt = FleetProcess.Now();
                replicas[leader].Kill();
                var next = WaitForLeader(replicas, since: killedAt, exclude: leader);
                var led = replicas[next].Lines.Last(l => l.StartsWith("LEADER ", StringComparison.Ordinal));
                takeovers.Add(FleetProcess.Ms(FleetProcess.Long(led, 2) - killedAt));
                Console.Error.WriteLine(string.Create(CultureInfo.InvariantCulture, $"failover {f + 1}: {replicas[leader].Name} killed, {replicas[next].Name} leads after {takeovers[^1]:0} ms"));
                replicas[leader].Dispose();
                replicas[leader] = StartReplica(cs, root, leader + 1, models);
                replicas[leader].WaitFor(l => l.StartsWith("READY", StringComparison.Ordinal), Bound);
            }

            _ = Command(replicas[0], "abort");
            foreach (var r in replicas)
            {
                r.Send("exit");
            }

            foreach (var r in replicas)
            {
                r.WaitForExit(TimeSpan.FromSeconds(60));
            }

            every.Sort();
            each.Sort();
            takeovers.Sort();
            var inv = CultureInfo.InvariantCulture;
            Console.WriteLine("| figure | samples | p50 | p99 | max |");
            Console.WriteLine("|---|---|---|---|---|");
            Console.WriteLine(string.Create(inv, $"| a rollout state change (start, pause, resume) reaches **every** other replica (ms after the replica that made it acknowledged it) | {every.Count} | {FleetProcess.Percentile(every, 0.5):0.0} | **{FleetProcess.Percentile(every, 0.99):0.0}** | {every[^1]:0.0} |"));
            Console.WriteLine(string.Create(inv, $"| … reaches one other replica (ms) | {each.Count} | {FleetProcess.Percentile(each, 0.5):0.0} | {FleetProcess.Percentile(each, 0.99):0.0} | {each[^1]:0.0} |"));
            if (takeovers.Count > 0)
            {
                Console.WriteLine(string.Create(inv, $"| leader failover: SIGKILL of the leader until another replica leads (s; lease {new RolloutControllerOptions().LeaseDuration.TotalSeconds:0} s, renewed every {new RolloutControllerOptions().LeaseDuration.TotalSeconds / 4:0} s) | {takeovers.Count} | {FleetProcess.Percentile(takeovers, 0.5) / 1000:0.00} | {FleetProcess.Percentile(takeovers, 0.99) / 1000:0.00} | {takeovers[^1] / 1000:0.00} |"));
                Console.WriteLine();
                Console.WriteLine("Failover times (s): " + string.Join(", ", takeovers.Select(t => (t / 1000).ToString("0.00", inv))));
            }

            var verified = AuditLog.VerifyDatabase(cs, null);
            Console.WriteLine();
            Console.WriteLine($"Audit log after the run: {(verified.IsValid ? "valid" : "FAILED: " + verified.Message)}, {verified.EntriesVerified:N0} entries.");
            return 0;
        }
        finally
        {
            foreach (var r in replicas)
            {
                r?.Dispose();
            }

            Directory.Delete(root, recursive: true);
        }
    }

    /// <summary>One replica: prints READY, then REV (state revision followed), LEADER/FOLLOWER, and ACK/ERR for each command read from stdin.</summary>
    public static int Replica(string[] args)
    {
        var (cs, dir, name, models) = (args[1], args[2], args[3], args[4]);
        using var audit = AuditLog.Open(new AuditLogOptions { ConnectionString = cs, EnableMetrics = false });
        var registry = new ModelRegistry(Path.Combine(dir, "registry"), audit);
        registry.Seed(Directory.GetFiles(models, "*.onnx"), new ModelRegistrationOptions { Deployer = name, Method = "bundled" });
        var serving = new ServingOptions { MetricsRegistry = Prometheus.Metrics.NewCustomRegistry() };
        serving.Model.EnableMetrics = false;
        serving.Model.IntraOpThreads = 1;
        using var pipelineOwner = new PipelineOwner(ServingPipeline.Open(registry, serving));
        var options = new RolloutControllerOptions { ConnectionString = cs, MetricsRegistry = Prometheus.Metrics.NewCustomRegistry() };
        options.BuiltInStrategies.AnalysisInterval = TimeSpan.FromMinutes(30); // only the commands change the state
        var controller = RolloutController.OpenAsync(registry, pipelineOwner.Pipeline, options).GetAwaiter().GetResult();
        using var stop = new CancellationTokenSource();
        var loop = controller.RunAsync(stop.Token);
        var output = Console.Out;
        var gate = new Lock();
        void Print(string line)
        {
            lock (gate)
            {
                output.WriteLine(line);
                output.Flush();
            }
        }

        var monitor = new Thread(() =>
        {
            var leader = false;
            long revision = -1;
            while (!loop.IsCompleted)
            {
                var now = FleetProcess.Now();
                if (controller.IsLeader != leader)
                {
                    leader = !leader;
                    Print(string.Create(CultureInfo.InvariantCulture, $"{(leader ? "LEADER" : "FOLLOWER")} {name} {now}"));
                }

                if (controller.Status?.Revision is { } r && r != revision)
                {
                    revision = r;
                    Print(string.Create(CultureInfo.InvariantCulture, $"REV {name} {r} {now}"));
                }

                Thread.Sleep(1);
            }
        }) { IsBackground = true, Name = "fleet-monitor" };
        monitor.Start();
        Print(string.Create(CultureInfo.InvariantCulture, $"READY {name} {FleetProcess.Now()}"));
        while (Console.In.ReadLine() is { } line && line != "exit")
        {
            try
            {
                var command = line == "start"
                    ? RolloutCommand.Start("1.1.0", "canary", "fleet-benchmark", "fleet benchmark")
                    : RolloutCommand.Create(Enum.Parse<RolloutCommandKind>(line, ignoreCase: true), "fleet-benchmark", "fleet benchmark");
                for (var attempt = 1; ; attempt++)
                {
                    try
                    {
                        var status = controller.ExecuteAsync(command).GetAwaiter().GetResult();
                        Print(string.Create(CultureInfo.InvariantCulture, $"ACK {name} {status.Revision} {FleetProcess.Now()}"));
                        break;
                    }
                    catch (RolloutConflictException) when (attempt < 10)
                    {
                        // The leader wrote the state between this replica's read and its compare-and-set: re-read and retry.
                    }
                }
            }
            catch (Exception ex) when (ex is RolloutConflictException or RolloutCommandRejectedException or InvalidOperationException or IOException)
            {
                Print($"ERR {name} {ex.GetType().Name}: {ex.Message.ReplaceLineEndings(" ")}");
            }
        }

        stop.Cancel();
        loop.GetAwaiter().GetResult();
        controller.DisposeAsync().AsTask().GetAwaiter().GetResult();
        return 0;
    }

    private static (long Revision, long At) Command(FleetProcess replica, string command)
    {
        var from = replica.Lines.Count;
        replica.Send(command);
        var ack = replica.WaitFor(l => l.StartsWith("ACK ", StringComparison.Ordinal) || l.StartsWith("ERR ", StringComparison.Ordinal), Bound, from);
        if (ack.StartsWith("ERR ", StringComparison.Ordinal))
        {
            throw new InvalidOperationException($"{command} on {replica.Name}: {ack}");
        }

        return (FleetProcess.Long(ack, 2), FleetProcess.Long(ack, 3));
    }

    /// <summary>The replica whose latest leadership line, printed after <paramref name="since"/>, says it leads (polled until exactly one does).</summary>
    private static int WaitForLeader(FleetProcess[] replicas, long since, int exclude = -1)
    {
        var clock = Stopwatch.StartNew();
        while (clock.Elapsed < Bound)
        {
            var leading = Enumerable.Range(0, replicas.Length).Where(i => i != exclude && !replicas[i].HasExited && replicas[i].Lines.LastOrDefault(l => l.StartsWith("LEADER ", StringComparison.Ordinal) || l.StartsWith("FOLLOWER ", StringComparison.Ordinal)) is { } last
                && last.StartsWith("LEADER ", StringComparison.Ordinal) && FleetProcess.Long(last, 2) > since).ToArray();
            if (leading.Length == 1)
            {
                return leading[0];
            }

            Thread.Sleep(1);
        }

        throw new TimeoutException($"no single leader within {Bound.TotalMinutes} min");
    }

    private static FleetProcess StartReplica(string cs, string root, int index, string models)
    {
        var name = string.Create(CultureInfo.InvariantCulture, $"replica-{index}");
        return new FleetProcess(name, "fleet-replica", cs, Path.Combine(root, name), name, models);
    }

    private static string FindModels()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            if (File.Exists(Path.Combine(dir.FullName, "Har.sln")))
            {
                return Path.Combine(dir.FullName, "models");
            }
        }

        throw new DirectoryNotFoundException("Run from the repository (the bundled models are in models/).");
    }

    private static void Reset(string cs)
    {
        using var connection = new NpgsqlConnection(cs);
        connection.Open();
        using var drop = new NpgsqlCommand("DROP SCHEMA IF EXISTS har_audit CASCADE; DROP SCHEMA IF EXISTS har_fleet CASCADE", connection);
        drop.ExecuteNonQuery();
    }

    /// <summary>Disposes the pipeline synchronously at the end of the replica.</summary>
    private sealed class PipelineOwner(ServingPipeline pipeline) : IDisposable
    {
        public ServingPipeline Pipeline => pipeline;

        public void Dispose() => pipeline.DisposeAsync().AsTask().GetAwaiter().GetResult();
    }
}
