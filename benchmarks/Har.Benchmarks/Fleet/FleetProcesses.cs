using System.Diagnostics;
using System.Globalization;

namespace Har.Benchmarks.Fleet;

/// <summary>A child process of the fleet runners (this benchmark executable in a worker mode): its stdout lines as they come, stdin for commands.</summary>
internal sealed class FleetProcess : IDisposable
{
    private readonly Process _process;
    private readonly List<string> _lines = [];
    private readonly Task _reader;
    private readonly Task _errors;

    public FleetProcess(string name, params string[] args)
    {
        Name = name;
        var info = new ProcessStartInfo(Environment.ProcessPath!)
        {
            RedirectStandardInput = true,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };

        // Under `dotnet Har.Benchmarks.dll` the process is the host: the assembly goes first.
        if (Path.GetFileNameWithoutExtension(Environment.ProcessPath!) == "dotnet")
        {
            info.ArgumentList.Add(typeof(FleetProcess).Assembly.Location);
        }

        foreach (var arg in args)
        {
            info.ArgumentList.Add(arg);
        }

        _process = Process.Start(info)!;
        _reader = Task.Run(async () =>
        {
            while (await _process.StandardOutput.ReadLineAsync().ConfigureAwait(false) is { } line)
            {
                lock (_lines)
                {
                    _lines.Add(line);
                }
            }
        });
        _errors = Task.Run(async () =>
        {
            while (await _process.StandardError.ReadLineAsync().ConfigureAwait(false) is { } line)
            {
                Console.Error.WriteLine($"[{Name}] {line}");
            }
        });
    }

    public string Name { get; }

    public bool HasExited => _process.HasExited;

    public List<string> Lines
    {
        get
        {
            lock (_lines)
            {
                return [.. _lines];
            }
        }
    }

    public void Send(string line)
    {
        _process.StandardInput.WriteLine(line);
        _process.StandardInput.Flush();
    }

    /// <summary>Waits (bounded) for the first line from index <paramref name="from"/> on that matches.</summary>
    public string WaitFor(Func<string, bool> match, TimeSpan timeout, int from = 0)
    {
        var clock = Stopwatch.StartNew();
        while (true)
        {
            var lines = Lines;
            for (var i = from; i < lines.Count; i++)
            {
                if (match(lines[i]))
                {
                    return lines[i];
                }
            }

            if (clock.Elapsed > timeout || _process.HasExited)
            {
                throw new TimeoutException($"{Name} printed no matching line within {timeout.TotalSeconds:0} s (exited: {_process.HasExited}); last lines:\n{string.Join('\n', lines.TakeLast(20))}");
            }

            Thread.Sleep(1);
        }
    }

    /// <summary>SIGKILL: no lease release, nothing flushed.</summary>
    public void Kill()
    {
        _process.Kill(entireProcessTree: true);
        _process.WaitForExit();
    }

    public void WaitForExit(TimeSpan timeout)
    {
        if (!_process.WaitForExit(timeout))
        {
            Kill();
        }
    }

    public void Dispose()
    {
        if (!_process.HasExited)
        {
            Kill();
        }

        Task.WaitAll([_reader, _errors], TimeSpan.FromSeconds(10));
        _process.Dispose();
    }

    /// <summary>The monotonic clock every process of the machine shares (CLOCK_MONOTONIC on Linux), as printed by the workers.</summary>
    public static long Now() => Stopwatch.GetTimestamp();

    public static double Ms(long ticks) => ticks * 1000.0 / Stopwatch.Frequency;

    public static string Field(string line, int index) => line.Split(' ')[index];

    public static long Long(string line, int index) => long.Parse(Field(line, index), CultureInfo.InvariantCulture);

    public static double Percentile(IReadOnlyList<double> sorted, double p) => sorted.Count == 0 ? double.NaN : sorted[Math.Min(sorted.Count - 1, (int)Math.Ceiling(p * sorted.Count) - 1)];
}
