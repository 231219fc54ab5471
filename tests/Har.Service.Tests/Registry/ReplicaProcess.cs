using System.Diagnostics;
using System.Net;
using System.Text;

namespace Har.Service.Tests.Registry;

/// <summary>
/// One Har.Service replica on a data folder the test owns (several replicas may share it, each with its own
/// audit log, as <c>deploy/k8s</c> runs them). Unlike <see cref="ServiceProcess"/> it can start without
/// waiting, and it can run under <c>/bin/sh</c> with <c>SIGXFSZ</c> ignored so that a file-size limit set
/// later (<c>prlimit --fsize</c>) makes writes fail with EFBIG, as on a full disk, instead of killing the process.
/// Disposing kills the process; the data folder is the test's to delete.
/// </summary>
internal sealed class ReplicaProcess : IAsyncDisposable
{
    private readonly Process _process;
    private readonly StringBuilder _output = new();

    private ReplicaProcess(Process process, Uri baseAddress, string operatorKey)
    {
        _process = process;
        BaseAddress = baseAddress;
        OperatorKey = operatorKey;
    }

    public Uri BaseAddress { get; }

    public string OperatorKey { get; }

    public int ProcessId => _process.Id;

    public bool HasExited => _process.HasExited;

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

    /// <summary>The models the service seeds from: the bundled ones when the repository has them, else the tiny fixtures.</summary>
    public static string ModelsDirectory(string scratch)
    {
        if (ServiceProcess.HasBundledModels)
        {
            return ServiceProcess.BundledModelsDirectory;
        }

        var models = Path.Combine(scratch, "fixture-models");
        Directory.CreateDirectory(models);
        foreach (var fixture in new[] { "tiny-probs-1.0.0.onnx", "tiny-logits-1.1.0.onnx" })
        {
            File.Copy(Path.Combine(ServiceProcess.FixturesDirectory, fixture), Path.Combine(models, fixture), overwrite: true);
        }

        return models;
    }

    public static ReplicaProcess Start(string dataDirectory, string auditDirectory, string modelsDirectory, bool ignoreFileSizeSignal = false)
    {
        var operatorKey = "operator-key-" + Guid.NewGuid().ToString("N");
        var baseAddress = new Uri($"http://127.0.0.1:{ServiceProcess.FreePort()}");
        var psi = new ProcessStartInfo(ignoreFileSizeSignal ? "/bin/sh" : "dotnet")
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
            WorkingDirectory = Path.GetDirectoryName(ServiceProcess.ServiceDll)!,
        };
        if (ignoreFileSizeSignal)
        {
            // An ignored signal stays ignored across exec, so the service's writes past the limit fail with EFBIG.
            psi.ArgumentList.Add("-c");
            psi.ArgumentList.Add("trap '' XFSZ; exec dotnet \"$@\"");
            psi.ArgumentList.Add("sh");
        }

        psi.ArgumentList.Add(ServiceProcess.ServiceDll);
        psi.ArgumentList.Add("--urls");
        psi.ArgumentList.Add(baseAddress.ToString().TrimEnd('/'));
        foreach (var (key, value) in new Dictionary<string, string>
        {
            ["Har:ModelsDirectory"] = modelsDirectory,
            ["Har:Service:DataDirectory"] = dataDirectory,
            ["Har:Service:AuditDirectory"] = auditDirectory,
            ["Har:Service:ApiKeys:0:Name"] = "test-operator",
            ["Har:Service:ApiKeys:0:Key"] = operatorKey,
            ["Har:Service:ApiKeys:0:Roles:0"] = "operator",
        })
        {
            psi.ArgumentList.Add($"--{key}={value}");
        }

        psi.Environment["DOTNET_ENVIRONMENT"] = "Production";
        var process = Process.Start(psi) ?? throw new InvalidOperationException("could not start the service");
        var replica = new ReplicaProcess(process, baseAddress, operatorKey);
        process.OutputDataReceived += (_, e) => replica.Append(e.Data);
        process.ErrorDataReceived += (_, e) => replica.Append(e.Data);
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        return replica;
    }

    /// <summary>Waits (bounded, polling) until <c>/ready</c> answers 200; false when the process exited first.</summary>
    public async Task<bool> WaitReadyAsync(TimeSpan timeout)
    {
        using var client = new HttpClient { BaseAddress = BaseAddress, Timeout = TimeSpan.FromSeconds(2) };
        var clock = Stopwatch.StartNew();
        while (clock.Elapsed < timeout)
        {
            if (_process.HasExited)
            {
                return false;
            }

            try
            {
                using var response = await client.GetAsync(new Uri("/ready", UriKind.Relative));
                if (response.StatusCode == HttpStatusCode.OK)
                {
                    return true;
                }
            }
            catch (HttpRequestException)
            {
            }
            catch (TaskCanceledException)
            {
            }

            await Task.Delay(200);
        }

        throw new TimeoutException($"The replica was neither ready nor exited within {timeout.TotalSeconds} s:\n{Output}");
    }

    public HttpClient CreateClient(bool asOperator = true)
    {
        var client = new HttpClient { BaseAddress = BaseAddress, Timeout = TimeSpan.FromSeconds(60) };
        if (asOperator)
        {
            client.DefaultRequestHeaders.Add("X-Api-Key", OperatorKey);
        }

        return client;
    }

    /// <summary>Sets the process's soft file-size limit (RLIMIT_FSIZE) with util-linux <c>prlimit</c>; null lifts it.</summary>
    public async Task LimitFileSizeAsync(long? bytes)
    {
        var psi = new ProcessStartInfo("prlimit") { RedirectStandardError = true, UseShellExecute = false };
        psi.ArgumentList.Add("--pid");
        psi.ArgumentList.Add(ProcessId.ToString(System.Globalization.CultureInfo.InvariantCulture));
        psi.ArgumentList.Add($"--fsize={(bytes is { } b ? b.ToString(System.Globalization.CultureInfo.InvariantCulture) : "unlimited")}:");
        using var prlimit = Process.Start(psi)!;
        var error = await prlimit.StandardError.ReadToEndAsync();
        await prlimit.WaitForExitAsync();
        Assert.True(prlimit.ExitCode == 0, $"prlimit {string.Join(' ', psi.ArgumentList)} failed: {error}");
    }

    public async ValueTask DisposeAsync()
    {
        if (!_process.HasExited)
        {
            _process.Kill(entireProcessTree: true);
            await _process.WaitForExitAsync();
        }

        _process.Dispose();
    }

    private void Append(string? line)
    {
        if (line is null)
        {
            return;
        }

        lock (_output)
        {
            if (_output.Length < 2_000_000)
            {
                _output.AppendLine(line);
            }
        }
    }
}
