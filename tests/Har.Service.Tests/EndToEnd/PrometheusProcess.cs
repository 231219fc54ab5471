using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Text;
using System.Text.Json;

namespace Har.Service.Tests.EndToEnd;

/// <summary>
/// A real Prometheus server (the Debian package) on a free loopback port, scraping one Har.Service
/// every second and evaluating the committed rules every second; its TSDB lives in a temp folder.
/// </summary>
internal sealed class PrometheusProcess : IAsyncDisposable
{
    private readonly Process _process;
    private readonly StringBuilder _output = new();
    private readonly HttpClient _client;

    private PrometheusProcess(Process process, Uri baseAddress)
    {
        _process = process;
        BaseAddress = baseAddress;
        _client = new HttpClient { BaseAddress = baseAddress, Timeout = TimeSpan.FromSeconds(10) };
    }

    public Uri BaseAddress { get; }

    public string Output
    {
        get
        {
            lock (_output)
            {
                return _output.ToString();
            }
        }
    }

    /// <summary>The <c>prometheus</c> executable on PATH, or <see langword="null"/>.</summary>
    public static string? FindExecutable() =>
        (Environment.GetEnvironmentVariable("PATH") ?? "").Split(Path.PathSeparator, StringSplitOptions.RemoveEmptyEntries)
            .Select(d => Path.Combine(d, "prometheus"))
            .FirstOrDefault(File.Exists);

    public static async Task<PrometheusProcess> StartAsync(string executable, string workDirectory, Uri target, string rulesFile, CancellationToken ct)
    {
        var port = ServiceProcess.FreePort();
        var config = Path.Combine(workDirectory, "prometheus.yml");
        var hostPort = $"{target.Host}:{target.Port}";
        await File.WriteAllTextAsync(config, $"""
            global:
              scrape_interval: 1s
              scrape_timeout: 1s
              evaluation_interval: 1s
            rule_files:
              - {rulesFile}
            scrape_configs:
              - job_name: har-service
                metrics_path: /metrics
                static_configs:
                  - targets: ["{hostPort}"]
            """, ct);

        var psi = new ProcessStartInfo(executable)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
            WorkingDirectory = workDirectory,
        };
        psi.ArgumentList.Add($"--config.file={config}");
        psi.ArgumentList.Add($"--storage.tsdb.path={Path.Combine(workDirectory, "tsdb")}");
        psi.ArgumentList.Add($"--web.listen-address=127.0.0.1:{port}");
        psi.ArgumentList.Add("--storage.tsdb.retention.time=1h");
        psi.ArgumentList.Add("--log.level=warn");
        var process = Process.Start(psi) ?? throw new InvalidOperationException($"could not start {executable}");
        var prometheus = new PrometheusProcess(process, new Uri($"http://127.0.0.1:{port}"));
        process.OutputDataReceived += (_, e) => prometheus.Append(e.Data);
        process.ErrorDataReceived += (_, e) => prometheus.Append(e.Data);
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();

        var watch = Stopwatch.StartNew();
        while (watch.Elapsed < TimeSpan.FromSeconds(60))
        {
            if (process.HasExited)
            {
                throw new InvalidOperationException($"prometheus exited with {process.ExitCode}:\n{prometheus.Output}");
            }

            try
            {
                using var ready = await prometheus._client.GetAsync("/-/ready", ct);
                if (ready.StatusCode == HttpStatusCode.OK)
                {
                    return prometheus;
                }
            }
            catch (HttpRequestException)
            {
            }

            await Task.Delay(250, ct);
        }

        await prometheus.DisposeAsync();
        throw new TimeoutException($"prometheus was not ready within 60 s:\n{prometheus.Output}");
    }

    /// <summary>Runs an instant query; returns the result vector's samples as (labels, value).</summary>
    public async Task<IReadOnlyList<(string Labels, double Value)>> QueryAsync(string promql, CancellationToken ct)
    {
        using var response = await _client.GetAsync("/api/v1/query?query=" + Uri.EscapeDataString(promql), ct);
        var text = await response.Content.ReadAsStringAsync(ct);
        using var json = JsonDocument.Parse(text);
        if (json.RootElement.GetProperty("status").GetString() != "success")
        {
            throw new InvalidOperationException($"query '{promql}' failed: {text}");
        }

        var data = json.RootElement.GetProperty("data");
        var result = data.GetProperty("result");
        return data.GetProperty("resultType").GetString() switch
        {
            "vector" => [.. result.EnumerateArray().Select(s => (s.GetProperty("metric").ToString(), ParseValue(s.GetProperty("value")[1].GetString()!)))],
            "scalar" => [("", ParseValue(result[1].GetString()!))],
            _ => throw new InvalidOperationException($"query '{promql}' returned {data.GetProperty("resultType")}; expected an instant vector"),
        };
    }

    /// <summary>The loaded rules: (group, type, name, query) from <c>/api/v1/rules</c>.</summary>
    public async Task<IReadOnlyList<(string Group, string Type, string Name, string Query)>> RulesAsync(CancellationToken ct)
    {
        using var json = JsonDocument.Parse(await _client.GetStringAsync("/api/v1/rules", ct));
        return
        [
            .. json.RootElement.GetProperty("data").GetProperty("groups").EnumerateArray().SelectMany(g => g.GetProperty("rules").EnumerateArray().Select(r =>
                (g.GetProperty("name").GetString()!, r.GetProperty("type").GetString()!, r.GetProperty("name").GetString()!, r.GetProperty("query").GetString()!))),
        ];
    }

    /// <summary>The active alerts (pending or firing): name, state and labels from <c>/api/v1/alerts</c>.</summary>
    public async Task<IReadOnlyList<(string Name, string State, IReadOnlyDictionary<string, string> Labels)>> AlertsAsync(CancellationToken ct)
    {
        using var json = JsonDocument.Parse(await _client.GetStringAsync("/api/v1/alerts", ct));
        return
        [
            .. json.RootElement.GetProperty("data").GetProperty("alerts").EnumerateArray().Select(a =>
            {
                var labels = a.GetProperty("labels").EnumerateObject().ToDictionary(p => p.Name, p => p.Value.GetString() ?? "", StringComparer.Ordinal);
                return (labels.GetValueOrDefault("alertname", ""), a.GetProperty("state").GetString()!, (IReadOnlyDictionary<string, string>)labels);
            }),
        ];
    }

    public async ValueTask DisposeAsync()
    {
        _client.Dispose();
        if (!_process.HasExited)
        {
            _process.Kill(entireProcessTree: true);
            await _process.WaitForExitAsync();
        }

        _process.Dispose();
    }

    private static double ParseValue(string value) => value switch
    {
        "NaN" => double.NaN,
        "+Inf" => double.PositiveInfinity,
        "-Inf" => double.NegativeInfinity,
        _ => double.Parse(value, CultureInfo.InvariantCulture),
    };

    private void Append(string? line)
    {
        if (line is null)
        {
            return;
        }

        lock (_output)
        {
            if (_output.Length < 200_000)
            {
                _output.AppendLine(line);
            }
        }
    }
}
