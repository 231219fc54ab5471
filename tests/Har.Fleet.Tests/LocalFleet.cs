using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Text;
using Har.Testing;

namespace Har.Fleet.Tests;

/// <summary>
/// The fleet of <c>scripts/fleet-local.sh</c>, run as a user runs it: a PostgreSQL cluster in a temporary folder, three
/// Har.Service replicas (the built service) on loopback ports sharing it, nginx in front hashing the stream id. The
/// script runs in the foreground until it gets SIGTERM; the fixture reads the <c>fleet.env</c> it writes once every
/// replica is ready (URLs, process ids, the connection string, the API key, restart scripts) and drives the faults
/// itself: SIGKILL a replica and restart it, stop and start PostgreSQL. Every wait is bounded; disposing stops the
/// script (which stops what it started) and, as a fallback, whatever is still running from the recorded ids.
/// Tests skip, with the reason, when PostgreSQL or nginx is not installed (CI installs both: .ci/steps).
/// </summary>
public sealed class LocalFleet : IAsyncLifetime
{
    /// <summary>Replicas in the fleet (the issue's reference: three).</summary>
    public const int ReplicaCount = 3;

    private static readonly TimeSpan StartTimeout = TimeSpan.FromMinutes(5);
    private readonly StringBuilder _scriptOutput = new();
    private readonly List<Process> _restarted = [];
    private readonly Dictionary<string, string> _env = new(StringComparer.Ordinal);
    private Process? _script;
    private string? _root;
    private string? _unavailable;

    /// <summary>Gets the nginx entry point.</summary>
    public Uri EntryPoint { get; private set; } = null!;

    /// <summary>Gets each replica's own address (index 0 is replica 1).</summary>
    public IReadOnlyList<Uri> Replicas { get; private set; } = [];

    /// <summary>Gets the operator+auditor API key every replica accepts.</summary>
    public string ApiKey => Env("HAR_FLEET_API_KEY");

    /// <summary>Gets the Npgsql connection string of the fleet's database (a Unix socket in the fleet's folder).</summary>
    public string ConnectionString => Env("HAR_FLEET_CONNECTION");

    /// <summary>Gets the fleet's folder (replica logs, nginx access log).</summary>
    public string Directory => Env("HAR_FLEET_DIR");

    /// <summary>Gets the built CLI (<c>har</c>).</summary>
    public static string CliDll => Path.Combine(BuildOutput("samples/Har.Cli"), "har.dll");

    private static string ServiceDll => Path.Combine(BuildOutput("samples/Har.Service"), "Har.Service.dll");

    public async ValueTask InitializeAsync()
    {
        if (FindPostgres() is null)
        {
            _unavailable = "Skipped: PostgreSQL server binaries (initdb, pg_ctl) are not installed; .ci/steps/20-postgresql.sh installs them (apt-get install postgresql).";
            return;
        }

        if (!File.Exists("/usr/sbin/nginx") && !OnPath("nginx"))
        {
            _unavailable = "Skipped: nginx is not installed; .ci/steps/25-nginx.sh installs it (apt-get install nginx).";
            return;
        }

        _root = System.IO.Directory.CreateTempSubdirectory("har-fleet-test-").FullName;

        // As root the script runs PostgreSQL as the 'postgres' user (and nginx's workers unprivileged): they must traverse it.
        if (!OperatingSystem.IsWindows())
        {
            File.SetUnixFileMode(_root, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute | UnixFileMode.GroupExecute | UnixFileMode.OtherExecute);
        }
        var dir = Path.Combine(_root, "fleet");
        var port = LoopbackPorts.FreeRun(ReplicaCount + 1); // the script binds them once PostgreSQL runs
        var psi = new ProcessStartInfo("bash") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false, WorkingDirectory = TestPaths.RepoRoot };
        foreach (var a in (string[])[
            Path.Combine(TestPaths.RepoRoot, "scripts", "fleet-local.sh"), "--replicas", ReplicaCount.ToString(CultureInfo.InvariantCulture),
            "--port", port.ToString(CultureInfo.InvariantCulture), "--dir", dir, "--service-dll", ServiceDll, "--",

            // Every request of the tests comes through one address (nginx's) or one key: the per-client fair-share
            // limits of a public service would throttle the test's concurrency, which is not what it measures.
            "Har:Service:MaxConcurrentPredictionsPerClient=256", "Har:Service:PredictionQueuePerClient=1024",
            "Har:Service:AnonymousWindowsPerSecond=1000000", "Har:Service:KeyedWindowsPerSecond=1000000",
            "Har:Service:RateLimitPerSecond=1000000", "Har:Service:RateLimitBurst=10000000",

            // Short analysis intervals, as an operator trying a fleet out would set: a canary decides within minutes.
            "Har:Service:RolloutAnalysisInterval=00:00:15"])
        {
            psi.ArgumentList.Add(a);
        }

        _script = Process.Start(psi) ?? throw new InvalidOperationException("could not start scripts/fleet-local.sh");
        _script.OutputDataReceived += (_, e) => AppendOutput(e.Data);
        _script.ErrorDataReceived += (_, e) => AppendOutput(e.Data);
        _script.BeginOutputReadLine();
        _script.BeginErrorReadLine();

        var envFile = Path.Combine(dir, "fleet.env");
        var clock = Stopwatch.StartNew();
        while (!File.Exists(envFile))
        {
            if (_script.HasExited)
            {
                throw new InvalidOperationException($"scripts/fleet-local.sh exited with {_script.ExitCode} before the fleet was ready:\n{ScriptOutput}");
            }

            if (clock.Elapsed > StartTimeout)
            {
                throw new TimeoutException($"The fleet was not ready within {StartTimeout.TotalMinutes} min:\n{ScriptOutput}");
            }

            await Task.Delay(250);
        }

        foreach (var line in File.ReadAllLines(envFile))
        {
            var eq = line.IndexOf('=', StringComparison.Ordinal);
            if (eq > 0)
            {
                _env[line[..eq]] = Unquote(line[(eq + 1)..]);
            }
        }

        EntryPoint = new Uri(Env("HAR_FLEET_URL"));
        Replicas = [.. Enumerable.Range(1, ReplicaCount).Select(i => new Uri(Env($"HAR_FLEET_REPLICA_{i}_URL")))];
    }

    /// <summary>Skips the test when the fleet's tools are missing.</summary>
    public void RequireTools()
    {
        if (_unavailable is not null)
        {
            Assert.Skip(_unavailable);
        }
    }

    /// <summary>Gets what the script printed (for failure messages).</summary>
    public string ScriptOutput
    {
        get
        {
            lock (_scriptOutput)
            {
                return _scriptOutput.ToString();
            }
        }
    }

    /// <summary>The last lines of replica <paramref name="replica"/>'s log (1-based), for failure messages.</summary>
    public string ReplicaLog(int replica, int lines = 40)
    {
        var path = Path.Combine(Directory, $"replica-{replica}.log");
        return File.Exists(path) ? string.Join('\n', File.ReadLines(path).TakeLast(lines)) : "(no log)";
    }

    /// <summary>An HTTP client on <paramref name="address"/>, with the fleet's key unless <paramref name="withKey"/> is false.</summary>
    public HttpClient Client(Uri address, bool withKey = true)
    {
        var client = new HttpClient { BaseAddress = address, Timeout = TimeSpan.FromSeconds(60) };
        if (withKey)
        {
            client.DefaultRequestHeaders.Add("X-Api-Key", ApiKey);
        }

        return client;
    }

    /// <summary>The process id of replica <paramref name="replica"/> (1-based) as last started.</summary>
    public int ReplicaPid(int replica) => int.Parse(Env($"HAR_FLEET_REPLICA_{replica}_PID"), CultureInfo.InvariantCulture);

    /// <summary>Kills replica <paramref name="replica"/> with SIGKILL (no shutdown code runs) and waits until it is gone.</summary>
    public async Task KillReplicaAsync(int replica)
    {
        using var process = Process.GetProcessById(ReplicaPid(replica));
        process.Kill(); // SIGKILL on Unix
        await process.WaitForExitAsync(TestContext.Current.CancellationToken);
    }

    /// <summary>
    /// Starts replica <paramref name="replica"/> again with the script's own restart file and waits until it is ready. With
    /// <paramref name="freshData"/> its data folder is emptied first (the shared signing key stays), as Kubernetes replaces a
    /// killed pod with a new one on an empty volume: state that matters is in PostgreSQL.
    /// </summary>
    public async Task RestartReplicaAsync(int replica, bool freshData)
    {
        if (freshData)
        {
            foreach (var entry in new DirectoryInfo(Path.Combine(Directory, $"replica-{replica}")).EnumerateFileSystemInfos())
            {
                if (entry.Name == "keys")
                {
                    continue; // the symbolic link to the fleet's key folder
                }

                if (entry is DirectoryInfo folder)
                {
                    folder.Delete(recursive: true);
                }
                else
                {
                    entry.Delete();
                }
            }
        }

        var process = Process.Start(new ProcessStartInfo("bash") { ArgumentList = { Env($"HAR_FLEET_REPLICA_{replica}_START") }, UseShellExecute = false })
            ?? throw new InvalidOperationException($"could not restart replica {replica}");
        lock (_restarted)
        {
            _restarted.Add(process);
        }

        _env[$"HAR_FLEET_REPLICA_{replica}_PID"] = process.Id.ToString(CultureInfo.InvariantCulture); // bash execs dotnet: same id
        await WaitReadyAsync(replica, process);
    }

    /// <summary>Stops PostgreSQL (fast shutdown: every client is disconnected), as an operator's restart does.</summary>
    public Task StopPostgresAsync() => PgCtlAsync("-m", "fast", "-w", "-t", "60", "stop");

    /// <summary>Starts PostgreSQL again on the same socket and data.</summary>
    public Task StartPostgresAsync() =>
        PgCtlAsync("-l", Path.Combine(Directory, "pg", "postgres.log"), "-w", "-t", "90", "-o", $"-k {Path.Combine(Directory, "pg")} -p 5432 -c listen_addresses='' -c max_connections=300", "start");

    /// <summary>Runs <c>har</c> with <paramref name="arguments"/> and the fleet's connection string in <c>ConnectionStrings__Har</c>; bounded.</summary>
    public async Task<(int ExitCode, string Output)> RunCliAsync(params string[] arguments)
    {
        var psi = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        psi.ArgumentList.Add(CliDll);
        foreach (var a in arguments)
        {
            psi.ArgumentList.Add(a);
        }

        psi.Environment["ConnectionStrings__Har"] = ConnectionString;
        return await RunAsync(psi, TimeSpan.FromMinutes(3));
    }

    public async ValueTask DisposeAsync()
    {
        if (_script is not null)
        {
            if (!_script.HasExited)
            {
                // SIGTERM: the script stops the replicas it started, nginx and PostgreSQL, and removes its folder.
                using (var term = Process.Start(new ProcessStartInfo("kill") { ArgumentList = { "-TERM", _script.Id.ToString(CultureInfo.InvariantCulture) }, UseShellExecute = false }))
                {
                    await term!.WaitForExitAsync();
                }

                using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(90));
                try
                {
                    await _script.WaitForExitAsync(timeout.Token);
                }
                catch (OperationCanceledException)
                {
                    _script.Kill(entireProcessTree: true);
                }
            }

            _script.Dispose();
        }

        foreach (var process in _restarted)
        {
            if (!process.HasExited)
            {
                process.Kill(entireProcessTree: true);
                await process.WaitForExitAsync();
            }

            process.Dispose();
        }

        // Fallback when the script could not clean up (killed): the cluster and nginx by their recorded ids.
        if (_env.Count > 0 && System.IO.Directory.Exists(Path.Combine(Directory, "pg", "data")))
        {
            try
            {
                await PgCtlAsync("-m", "immediate", "-w", "-t", "30", "stop");
            }
            catch (InvalidOperationException)
            {
                // already stopped
            }
        }

        if (_env.TryGetValue("HAR_FLEET_NGINX_PID", out var nginx) && int.TryParse(nginx, CultureInfo.InvariantCulture, out var nginxPid))
        {
            TryKill(nginxPid);
        }

        if (_root is not null)
        {
            try
            {
                System.IO.Directory.Delete(_root, recursive: true);
            }
            catch (IOException)
            {
                // best effort
            }
        }
    }

    private string Env(string name) =>
        _env.TryGetValue(name, out var value) ? value : throw new InvalidOperationException($"fleet.env has no {name}; the fleet did not start.\n{ScriptOutput}");

    private async Task WaitReadyAsync(int replica, Process process)
    {
        using var client = new HttpClient { BaseAddress = Replicas[replica - 1], Timeout = TimeSpan.FromSeconds(3) };
        var clock = Stopwatch.StartNew();
        while (clock.Elapsed < TimeSpan.FromMinutes(3))
        {
            if (process.HasExited)
            {
                throw new InvalidOperationException($"Replica {replica} exited with {process.ExitCode} after its restart:\n{ReplicaLog(replica)}");
            }

            try
            {
                using var response = await client.GetAsync(new Uri("/ready", UriKind.Relative));
                if (response.StatusCode == HttpStatusCode.OK)
                {
                    return;
                }
            }
            catch (HttpRequestException)
            {
            }
            catch (TaskCanceledException)
            {
            }

            await Task.Delay(250);
        }

        throw new TimeoutException($"Replica {replica} was not ready within 3 min of its restart:\n{ReplicaLog(replica)}");
    }

    private async Task PgCtlAsync(params string[] arguments)
    {
        var user = _env.GetValueOrDefault("HAR_FLEET_PG_USER", "");
        var pgCtl = Path.Combine(Env("HAR_FLEET_PG_BIN"), "pg_ctl");
        var psi = new ProcessStartInfo(user.Length > 0 ? "runuser" : pgCtl) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        if (user.Length > 0)
        {
            foreach (var a in (string[])["-u", user, "--", pgCtl])
            {
                psi.ArgumentList.Add(a);
            }
        }

        psi.ArgumentList.Add("-D");
        psi.ArgumentList.Add(Env("HAR_FLEET_PG_DATA"));
        foreach (var a in arguments)
        {
            psi.ArgumentList.Add(a);
        }

        var (exit, output) = await RunAsync(psi, TimeSpan.FromMinutes(2));
        if (exit != 0)
        {
            throw new InvalidOperationException($"pg_ctl {string.Join(' ', arguments)} failed with exit code {exit}: {output}");
        }
    }

    private static async Task<(int ExitCode, string Output)> RunAsync(ProcessStartInfo psi, TimeSpan timeout)
    {
        using var process = Process.Start(psi) ?? throw new InvalidOperationException($"could not start {psi.FileName}");
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        using var cts = new CancellationTokenSource(timeout);
        try
        {
            await process.WaitForExitAsync(cts.Token);
        }
        catch (OperationCanceledException)
        {
            process.Kill(entireProcessTree: true);
            throw new TimeoutException($"{psi.FileName} {string.Join(' ', psi.ArgumentList)} did not finish within {timeout.TotalSeconds} s.");
        }

        return (process.ExitCode, await stdout + await stderr);
    }

    private void AppendOutput(string? line)
    {
        if (line is null)
        {
            return;
        }

        lock (_scriptOutput)
        {
            if (_scriptOutput.Length < 1_000_000)
            {
                _scriptOutput.AppendLine(line);
            }
        }
    }

    private static void TryKill(int pid)
    {
        try
        {
            using var process = Process.GetProcessById(pid);
            process.Kill();
        }
        catch (ArgumentException)
        {
            // not running
        }
        catch (InvalidOperationException)
        {
            // exited meanwhile
        }
    }

    private static string Unquote(string value)
    {
        // fleet.env is written with printf %q: backslash escapes, or $'…' for control characters (never in our values).
        var text = new StringBuilder(value.Length);
        for (var i = 0; i < value.Length; i++)
        {
            if (value[i] == '\\' && i + 1 < value.Length)
            {
                i++;
            }

            text.Append(value[i]);
        }

        return text.ToString();
    }

    private static string? FindPostgres()
    {
        if (System.IO.Directory.Exists("/usr/lib/postgresql")
            && System.IO.Directory.GetDirectories("/usr/lib/postgresql").Any(d => File.Exists(Path.Combine(d, "bin", "initdb")) && File.Exists(Path.Combine(d, "bin", "pg_ctl"))))
        {
            return "/usr/lib/postgresql";
        }

        return OnPath("initdb") && OnPath("pg_ctl") ? "PATH" : null;
    }

    private static bool OnPath(string tool) =>
        (Environment.GetEnvironmentVariable("PATH") ?? string.Empty).Split(':', StringSplitOptions.RemoveEmptyEntries).Any(d => File.Exists(Path.Combine(d, tool)));

    private static string BuildOutput(string project)
    {
        // The test assembly lives in tests/Har.Fleet.Tests/bin/<Configuration>/net10.0/.
        var configuration = new DirectoryInfo(AppContext.BaseDirectory).Parent!.Name;
        return Path.Combine(TestPaths.RepoRoot, project, "bin", configuration, "net10.0");
    }
}
