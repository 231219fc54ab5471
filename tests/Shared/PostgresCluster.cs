using System.Diagnostics;
using System.Globalization;
using Npgsql;

[assembly: AssemblyFixture(typeof(Har.Testing.PostgresCluster))]

namespace Har.Testing;

/// <summary>
/// A throwaway PostgreSQL cluster for the tests: <c>initdb</c> into a temporary folder, <c>pg_ctl start</c> listening
/// only on a Unix socket in that folder (no TCP), one fresh database per test, <c>pg_ctl stop -m immediate</c> and the
/// folder deleted at the end. Started on first use; every step is bounded in time. PostgreSQL refuses to run as root,
/// so as root the server runs as the unprivileged <c>postgres</c> user (the folder is chowned to it).
/// Tests skip (with the reason) only when no PostgreSQL binaries are installed. Compiled into every test project from
/// tests/Shared (an assembly fixture: nothing starts until a test asks for a database).
/// </summary>
public sealed class PostgresCluster : IAsyncDisposable
{
    private static readonly TimeSpan StepTimeout = TimeSpan.FromSeconds(120);
    private readonly SemaphoreSlim _startLock = new(1, 1);
    private string? _root;
    private string? _bin;
    private bool _started;
    private string? _unavailable;
    private int _databases;

    /// <summary>Gets the folder holding the Unix socket (the Host of connection strings).</summary>
    public string SocketDirectory => _root ?? throw new InvalidOperationException("The cluster is not started.");

    /// <summary>Starts the cluster if needed and creates an empty database; returns its connection string.</summary>
    public async Task<string> CreateDatabaseAsync()
    {
        await EnsureStartedAsync();
        var name = "har_test_" + Interlocked.Increment(ref _databases).ToString(CultureInfo.InvariantCulture) + "_" + Guid.NewGuid().ToString("N")[..8];
        await using (var connection = new NpgsqlConnection(ConnectionString("postgres")))
        {
            await connection.OpenAsync();
            await using var create = new NpgsqlCommand($"CREATE DATABASE {name}", connection);
            await create.ExecuteNonQueryAsync();
        }

        return ConnectionString(name);
    }

    /// <summary>The connection string of database <paramref name="database"/> over the cluster's socket.</summary>
    public string ConnectionString(string database) =>
        new NpgsqlConnectionStringBuilder { Host = SocketDirectory, Port = 5432, Username = "har", Database = database, Timeout = 60, CommandTimeout = 120 }.ConnectionString;

    public async ValueTask DisposeAsync()
    {
        if (_started && _bin is not null && _root is not null)
        {
            try
            {
                await RunAsync(Path.Combine(_bin, "pg_ctl"), ["-D", Path.Combine(_root, "data"), "-m", "immediate", "-w", "-t", "60", "stop"]);
            }
            catch (InvalidOperationException)
            {
                // reported by the tests that used it; the folder is removed below either way
            }
        }

        if (_root is not null)
        {
            try
            {
                Directory.Delete(_root, recursive: true);
            }
            catch (IOException)
            {
                // best effort
            }
        }

        _startLock.Dispose();
    }

    private async Task EnsureStartedAsync()
    {
        await _startLock.WaitAsync();
        try
        {
            if (_unavailable is not null)
            {
                Assert.Skip(_unavailable);
            }

            if (_started)
            {
                return;
            }

            _bin = FindBinaries();
            if (_bin is null)
            {
                _unavailable = "PostgreSQL is not installed (no initdb/pg_ctl in /usr/lib/postgresql/*/bin or on PATH); .ci/steps/20-postgresql.sh installs it (apt-get install postgresql).";
                Assert.Skip(_unavailable);
            }

            _root = Path.Combine(Path.GetTempPath(), "har-pg-" + Guid.NewGuid().ToString("N")[..12]);
            Directory.CreateDirectory(_root);
            if (Environment.IsPrivilegedProcess)
            {
                await RunAsync("chown", ["postgres:postgres", _root], asRoot: true);
            }

            var data = Path.Combine(_root, "data");
            await RunAsync(Path.Combine(_bin, "initdb"), ["-D", data, "-U", "har", "-A", "trust", "-E", "UTF8", "--locale=C", "--no-sync"]);
            await StartServerCoreAsync();
            _started = true;
        }
        finally
        {
            _startLock.Release();
        }
    }

    /// <summary>Stops the server (fast shutdown: clients are disconnected), as an operator or a crash would.</summary>
    public Task StopServerAsync() =>
        RunAsync(Path.Combine(_bin!, "pg_ctl"), ["-D", Path.Combine(SocketDirectory, "data"), "-m", "fast", "-w", "-t", "60", "stop"]);

    /// <summary>Starts the server again after <see cref="StopServerAsync"/>.</summary>
    public Task StartServerAsync() => StartServerCoreAsync();

    private Task StartServerCoreAsync() =>
        RunAsync(Path.Combine(_bin!, "pg_ctl"), ["-D", Path.Combine(_root!, "data"), "-l", Path.Combine(_root!, "postgres.log"), "-w", "-t", "90", "-o", $"-k {_root} -p 5432 -c listen_addresses='' -c max_connections=200", "start"]);

    private static string? FindBinaries()
    {
        // HAR_POSTGRES_BIN names the bin folder to use (a folder without initdb means: behave as if PostgreSQL were absent).
        if (Environment.GetEnvironmentVariable("HAR_POSTGRES_BIN") is { Length: > 0 } chosen)
        {
            return File.Exists(Path.Combine(chosen, "initdb")) && File.Exists(Path.Combine(chosen, "pg_ctl")) ? chosen : null;
        }

        var versioned = Directory.Exists("/usr/lib/postgresql")
            ? Directory.GetDirectories("/usr/lib/postgresql").Select(d => Path.Combine(d, "bin"))
                .Where(d => File.Exists(Path.Combine(d, "initdb")) && File.Exists(Path.Combine(d, "pg_ctl")))
                .OrderByDescending(d => int.TryParse(Path.GetFileName(Path.GetDirectoryName(d)), NumberStyles.None, CultureInfo.InvariantCulture, out var v) ? v : 0)
                .FirstOrDefault()
            : null;
        if (versioned is not null)
        {
            return versioned;
        }

        foreach (var dir in (Environment.GetEnvironmentVariable("PATH") ?? string.Empty).Split(':', StringSplitOptions.RemoveEmptyEntries))
        {
            var initdb = Path.Combine(dir, "initdb");
            if (File.Exists(initdb))
            {
                var target = new FileInfo(initdb).ResolveLinkTarget(returnFinalTarget: true)?.FullName ?? initdb;
                return Path.GetDirectoryName(target);
            }
        }

        return null;
    }

    /// <summary>Runs a PostgreSQL tool (as the postgres user when this process is root), bounded by <see cref="StepTimeout"/>.</summary>
    private async Task RunAsync(string file, string[] arguments, bool asRoot = false)
    {
        var info = new ProcessStartInfo { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        if (Environment.IsPrivilegedProcess && !asRoot)
        {
            info.FileName = "runuser";
            foreach (var a in (string[])["-u", "postgres", "--", file, .. arguments])
            {
                info.ArgumentList.Add(a);
            }
        }
        else
        {
            info.FileName = file;
            foreach (var a in arguments)
            {
                info.ArgumentList.Add(a);
            }
        }

        using var process = Process.Start(info) ?? throw new InvalidOperationException($"Could not start {file}.");
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        using var timeout = new CancellationTokenSource(StepTimeout);
        try
        {
            await process.WaitForExitAsync(timeout.Token);
        }
        catch (OperationCanceledException)
        {
            process.Kill(entireProcessTree: true);
            throw new InvalidOperationException($"{Path.GetFileName(file)} did not finish within {StepTimeout.TotalSeconds} s.");
        }

        if (process.ExitCode != 0)
        {
            var log = _root is not null && File.Exists(Path.Combine(_root, "postgres.log")) ? await File.ReadAllTextAsync(Path.Combine(_root, "postgres.log")) : string.Empty;
            throw new InvalidOperationException($"{Path.GetFileName(file)} {string.Join(' ', arguments)} failed with exit code {process.ExitCode}: {await stdout}{await stderr}{log}");
        }
    }
}
