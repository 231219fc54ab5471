using System.Diagnostics;
using System.Globalization;
using System.Text;
using Har.Deployment.Tests.Support;

namespace Har.Deployment.Tests.Fleet;

/// <summary>One fleet replica as a real child process (tests/Har.Deployment.ProcessHost <c>fleet</c>): its stdout lines, read as they come.</summary>
internal sealed class ReplicaProcess : IDisposable
{
    private readonly Process _process;
    private readonly List<string> _lines = [];
    private readonly StringBuilder _error = new();
    private readonly Task _reader;
    private readonly Task _errorReader;

    public ReplicaProcess(string dir, string connectionString, string name)
    {
        Name = name;
        _process = ProcessHost.Start(["fleet", dir, connectionString, name], redirectInput: true);
        _reader = Task.Run(async () =>
        {
            while (await _process.StandardOutput.ReadLineAsync() is { } line)
            {
                lock (_lines)
                {
                    _lines.Add(line);
                }
            }
        });
        _errorReader = Task.Run(async () =>
        {
            while (await _process.StandardError.ReadLineAsync() is { } line)
            {
                lock (_error)
                {
                    _error.AppendLine(line);
                }
            }
        });
    }

    public string Name { get; }

    public bool HasExited => _process.HasExited;

    public IReadOnlyList<string> Lines
    {
        get
        {
            lock (_lines)
            {
                return [.. _lines];
            }
        }
    }

    /// <summary>The plans this replica published: (revision, candidate percent, unix ms, stable version).</summary>
    public IReadOnlyList<(long Revision, double Percent, long At, string Stable)> Plans =>
        [.. Lines.Where(l => l.StartsWith("PLAN ", StringComparison.Ordinal)).Select(l => l.Split(' ')).Select(p => (long.Parse(p[2], CultureInfo.InvariantCulture), double.Parse(p[3], CultureInfo.InvariantCulture), long.Parse(p[4], CultureInfo.InvariantCulture), p[5]))];

    public void Send(string command)
    {
        _process.StandardInput.WriteLine(command);
        _process.StandardInput.Flush();
    }

    /// <summary>Waits (polling every 100 ms, bounded by <paramref name="timeout"/>) until a line matches; fails with everything the replica printed.</summary>
    public async Task<string> WaitForAsync(Func<string, bool> predicate, TimeSpan timeout, string what)
    {
        var deadline = Stopwatch.StartNew();
        while (true)
        {
            var match = Lines.FirstOrDefault(predicate);
            if (match is not null)
            {
                return match;
            }

            if (deadline.Elapsed > timeout || _process.HasExited)
            {
                Assert.Fail($"Replica {Name} did not print {what} within {timeout.TotalSeconds:0} s (exited: {_process.HasExited}).\n{Describe()}");
            }

            await Task.Delay(100, TestContext.Current.CancellationToken);
        }
    }

    /// <summary>SIGKILL: no finally block, no lease release, no flush.</summary>
    public void Kill()
    {
        _process.Kill(entireProcessTree: true);
        _process.WaitForExit();
    }

    public string Describe()
    {
        lock (_error)
        {
            return $"--- {Name} stdout:\n{string.Join('\n', Lines)}\n--- {Name} stderr:\n{_error}";
        }
    }

    public void Dispose()
    {
        if (!_process.HasExited)
        {
            _process.Kill(entireProcessTree: true);
            _process.WaitForExit();
        }

        Task.WaitAll([_reader, _errorReader], TimeSpan.FromSeconds(10));
        _process.Dispose();
    }
}
