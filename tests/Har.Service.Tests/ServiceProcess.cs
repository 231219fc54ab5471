using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Text;

namespace Har.Service.Tests;

/// <summary>
/// The real Har.Service, started as a child process on 127.0.0.1 with its own data directory, stopped
/// (and its data removed) on dispose. Its stdout/stderr are kept for failure messages.
/// </summary>
internal sealed class ServiceProcess : IAsyncDisposable
{
    private readonly Process _process;
    private readonly StringBuilder _output = new();
    private readonly string _root;

    private ServiceProcess(Process process, Uri baseAddress, string root, string modelsDirectory, string operatorKey, string auditorKey, string predictorKey, string labellerKey)
    {
        _process = process;
        _root = root;
        BaseAddress = baseAddress;
        DataDirectory = Path.Combine(root, "data");
        ModelsDirectory = modelsDirectory;
        OperatorKey = operatorKey;
        AuditorKey = auditorKey;
        PredictorKey = predictorKey;
        LabellerKey = labellerKey;
    }

    /// <summary>Setting that makes <see cref="StartAsync"/> configure the keys as <c>deploy/</c> does: operator, auditor and predictor keys in an <c>ApiKeysFile</c>.</summary>
    public const string KeysInFile = "test:KeysInFile";

    /// <summary>The root folder of this instance (data directory, key file, fixtures); removed on dispose.</summary>
    public string Root => _root;

    /// <summary>A key with the predictor role only (configured with <see cref="KeysInFile"/>).</summary>
    public string PredictorKey { get; }

    /// <summary>A key with the labeller role only (feedback labels).</summary>
    public string LabellerKey { get; }

    /// <summary>The models the service seeded its registry from (the bundled ones, or the test fixtures).</summary>
    public string ModelsDirectory { get; }

    /// <summary>The service's process id (for memory sampling and liveness checks).</summary>
    public int ProcessId => _process.Id;

    public Uri BaseAddress { get; }

    public string DataDirectory { get; }

    public string OperatorKey { get; }

    public string AuditorKey { get; }

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

    public static string ServiceDll => Path.Combine(BuildOutput("samples/Har.Service"), "Har.Service.dll");

    public static string CliDll => Path.Combine(BuildOutput("samples/Har.Cli"), "har.dll");

    /// <summary>Every model bundled beside the service (<c>models/*.onnx</c>), when the repository has them: also the candidate 1.2.0, which reads the 200 frames before each window.</summary>
    public static string AllBundledModelsDirectory => Path.Combine(Path.GetDirectoryName(ServiceDll)!, "models");

    /// <summary>
    /// The bundled models that read single windows (the 1.0.0 champion and the 1.1.0 candidate), in a folder of their own:
    /// what the HTTP tests serve, so their <c>/v1/predict</c> windows are 200 frames and their rollouts run without
    /// <c>Har:Service:ContextFrames</c>. The context candidate is served by its own tests from <see cref="AllBundledModelsDirectory"/>.
    /// </summary>
    public static string BundledModelsDirectory => SingleWindowModels.Value;

    /// <summary>Whether the real bundled models (1.0.0 champion, 1.1.0 candidate) are present.</summary>
    public static bool HasBundledModels => Directory.Exists(BundledModelsDirectory) && Directory.GetFiles(BundledModelsDirectory, "*.onnx").Length >= 2;

    private static readonly Lazy<string> SingleWindowModels = new(() =>
    {
        var folder = Directory.CreateTempSubdirectory("har-service-test-models-").FullName;
        AppDomain.CurrentDomain.ProcessExit += (_, _) =>
        {
            try
            {
                Directory.Delete(folder, recursive: true);
            }
            catch (IOException)
            {
                // A service process may still hold a file; the folder is in the temp directory.
            }
        };
        if (Directory.Exists(AllBundledModelsDirectory))
        {
            foreach (var file in Directory.GetFiles(AllBundledModelsDirectory, "*.onnx").Where(f => Har.Inference.ModelCard.Load(f).ContextFrames == 0))
            {
                File.Copy(file, Path.Combine(folder, Path.GetFileName(file)));
            }
        }

        return folder;
    });

    /// <summary>The Har.Inference test fixtures (tiny models with real model cards), used when the bundled models are absent.</summary>
    public static string FixturesDirectory => Path.Combine(Har.Testing.TestPaths.RepoRoot, "tests", "Har.Inference.Tests", "Fixtures");

    /// <summary>A free loopback port below the ephemeral range (<see cref="Har.Testing.LoopbackPorts"/>).</summary>
    public static int FreePort() => Har.Testing.LoopbackPorts.FreeRun();

    /// <summary>Starts the service and waits (bounded) until <c>/ready</c> answers 200.</summary>
    /// <param name="settings">Configuration (command-line) settings; <see cref="KeysInFile"/> puts the keys in an <c>ApiKeysFile</c>.</param>
    /// <param name="port">The port, or a free one.</param>
    /// <param name="environment">Extra environment variables of the process (e.g. the container's GC settings).</param>
    /// <param name="cancellationToken">Cancels the wait.</param>
    /// <param name="readyPath">What to wait for: <c>/ready</c> (serving), or <c>/health</c> (the process is up, e.g. degraded on purpose).</param>
    /// <param name="openFileLimit">When set, the process's open-file limit (soft and hard, <c>ulimit -n</c> in a shell that then runs the service; Unix only).</param>
    public static async Task<ServiceProcess> StartAsync(IDictionary<string, string>? settings = null, int? port = null, IDictionary<string, string>? environment = null, string readyPath = "/ready", int? openFileLimit = null, CancellationToken cancellationToken = default)
    {
        var dataDirectory = Directory.CreateTempSubdirectory("har-service-test-").FullName;
        var operatorKey = "operator-key-" + Guid.NewGuid().ToString("N");
        var auditorKey = "auditor-key-" + Guid.NewGuid().ToString("N");
        var predictorKey = "predictor-key-" + Guid.NewGuid().ToString("N");
        var labellerKey = "labeller-key-" + Guid.NewGuid().ToString("N");
        var actualPort = port ?? FreePort();
        var baseAddress = new Uri($"http://127.0.0.1:{actualPort}");

        // The real bundled models when the repository has them; otherwise the tiny fixtures 1.0.0 (probabilities,
        // the champion) and 1.1.0 (logits) in a models folder of this instance.
        var modelsDirectory = BundledModelsDirectory;
        if (settings?.TryGetValue("Har:ModelsDirectory", out var configured) == true)
        {
            modelsDirectory = configured;
        }
        else if (!HasBundledModels)
        {
            modelsDirectory = Path.Combine(dataDirectory, "fixture-models");
            Directory.CreateDirectory(modelsDirectory);
            foreach (var fixture in new[] { "tiny-probs-1.0.0.onnx", "tiny-logits-1.1.0.onnx" })
            {
                File.Copy(Path.Combine(FixturesDirectory, fixture), Path.Combine(modelsDirectory, fixture));
            }
        }

        var all = new Dictionary<string, string>
        {
            ["Har:ModelsDirectory"] = modelsDirectory,
            ["Har:Service:DataDirectory"] = Path.Combine(dataDirectory, "data"),
        };
        if (settings?.ContainsKey(KeysInFile) == true)
        {
            var file = Path.Combine(dataDirectory, "api-keys.json");
            File.WriteAllText(file, $$"""
                [
                  {"name": "test-operator", "key": "{{operatorKey}}", "roles": ["operator"]},
                  {"name": "test-auditor", "key": "{{auditorKey}}", "roles": ["auditor"]},
                  {"name": "test-predictor", "key": "{{predictorKey}}", "roles": ["predictor"]},
                  {"name": "test-labeller", "key": "{{labellerKey}}", "roles": ["labeller"]}
                ]
                """);
            all["Har:Service:ApiKeysFile"] = file;
        }
        else if (settings?.ContainsKey("Har:Service:ApiKeysFile") != true)
        {
            all["Har:Service:ApiKeys:0:Name"] = "test-operator";
            all["Har:Service:ApiKeys:0:Key"] = operatorKey;
            all["Har:Service:ApiKeys:0:Roles:0"] = "operator";
            all["Har:Service:ApiKeys:1:Name"] = "test-auditor";
            all["Har:Service:ApiKeys:1:Key"] = auditorKey;
            all["Har:Service:ApiKeys:1:Roles:0"] = "auditor";
            all["Har:Service:ApiKeys:2:Name"] = "test-predictor";
            all["Har:Service:ApiKeys:2:Key"] = predictorKey;
            all["Har:Service:ApiKeys:2:Roles:0"] = "predictor";
            all["Har:Service:ApiKeys:3:Name"] = "test-labeller";
            all["Har:Service:ApiKeys:3:Key"] = labellerKey;
            all["Har:Service:ApiKeys:3:Roles:0"] = "labeller";
        }

        if (settings is not null)
        {
            foreach (var (k, v) in settings)
            {
                if (k != KeysInFile)
                {
                    all[k] = v;
                }
            }
        }

        var psi = new ProcessStartInfo(openFileLimit is null ? "dotnet" : "/bin/sh")
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
            WorkingDirectory = Path.GetDirectoryName(ServiceDll)!,
        };
        if (openFileLimit is { } files)
        {
            // The shell sets the limit and replaces itself with the service (same process id).
            psi.ArgumentList.Add("-c");
            psi.ArgumentList.Add(string.Create(CultureInfo.InvariantCulture, $"ulimit -n {files} && exec dotnet \"$@\""));
            psi.ArgumentList.Add("sh");
        }

        psi.ArgumentList.Add(ServiceDll);
        psi.ArgumentList.Add("--urls");
        psi.ArgumentList.Add(baseAddress.ToString().TrimEnd('/'));
        foreach (var (k, v) in all)
        {
            psi.ArgumentList.Add($"--{k}={v}");
        }

        psi.Environment["DOTNET_ENVIRONMENT"] = "Production";
        if (environment is not null)
        {
            foreach (var (k, v) in environment)
            {
                psi.Environment[k] = v;
            }
        }

        var process = Process.Start(psi) ?? throw new InvalidOperationException("could not start the service");
        var service = new ServiceProcess(process, baseAddress, dataDirectory, modelsDirectory, operatorKey, auditorKey, predictorKey, labellerKey);
        process.OutputDataReceived += (_, e) => service.Append(e.Data);
        process.ErrorDataReceived += (_, e) => service.Append(e.Data);
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();

        using var client = new HttpClient { BaseAddress = baseAddress, Timeout = TimeSpan.FromSeconds(2) };
        var deadline = Stopwatch.StartNew();
        while (deadline.Elapsed < TimeSpan.FromSeconds(90))
        {
            cancellationToken.ThrowIfCancellationRequested();
            if (process.HasExited)
            {
                throw new InvalidOperationException($"Har.Service exited with {process.ExitCode} before it was ready:\n{service.Output}");
            }

            try
            {
                using var response = await client.GetAsync(readyPath, cancellationToken);
                if (response.StatusCode == HttpStatusCode.OK)
                {
                    return service;
                }
            }
            catch (HttpRequestException)
            {
            }
            catch (TaskCanceledException) when (!cancellationToken.IsCancellationRequested)
            {
            }

            await Task.Delay(200, cancellationToken);
        }

        await service.DisposeAsync();
        throw new TimeoutException($"Har.Service was not ready within 90 s:\n{service.Output}");
    }

    /// <summary>
    /// Runs the service with the given settings (no default keys unless given) until it exits, bounded; for
    /// configurations it must refuse at start. Returns its exit code and output.
    /// </summary>
    /// <param name="settings">Configuration (command-line) settings; <c>{root}</c> in a value is this run's own folder.</param>
    /// <param name="cancellationToken">Cancels the wait.</param>
    /// <param name="switches">Command-line switches passed as they are (e.g. <c>--list-routes</c>).</param>
    public static async Task<(int ExitCode, string Output)> RunUntilExitAsync(IDictionary<string, string> settings, CancellationToken cancellationToken, params string[] switches)
    {
        var root = Directory.CreateTempSubdirectory("har-service-test-").FullName;
        try
        {
            var psi = new ProcessStartInfo("dotnet")
            {
                RedirectStandardOutput = true,
                RedirectStandardError = true,
                UseShellExecute = false,
                WorkingDirectory = Path.GetDirectoryName(ServiceDll)!,
            };
            psi.ArgumentList.Add(ServiceDll);
            psi.ArgumentList.Add("--urls");
            psi.ArgumentList.Add($"http://127.0.0.1:{FreePort()}");
            psi.ArgumentList.Add($"--Har:Service:DataDirectory={Path.Combine(root, "data")}");
            foreach (var (k, v) in settings)
            {
                psi.ArgumentList.Add($"--{k}={v.Replace("{root}", root, StringComparison.Ordinal)}");
            }

            foreach (var s in switches)
            {
                psi.ArgumentList.Add(s);
            }

            psi.Environment["DOTNET_ENVIRONMENT"] = "Production";
            using var process = Process.Start(psi) ?? throw new InvalidOperationException("could not start the service");
            var output = new StringBuilder();
            process.OutputDataReceived += (_, e) => { lock (output) { output.AppendLine(e.Data); } };
            process.ErrorDataReceived += (_, e) => { lock (output) { output.AppendLine(e.Data); } };
            process.BeginOutputReadLine();
            process.BeginErrorReadLine();
            using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
            timeout.CancelAfter(TimeSpan.FromSeconds(90));
            try
            {
                await process.WaitForExitAsync(timeout.Token);
            }
            catch (OperationCanceledException)
            {
                process.Kill(entireProcessTree: true);
                await process.WaitForExitAsync(CancellationToken.None);
                lock (output)
                {
                    throw new TimeoutException($"Har.Service did not exit within 90 s:\n{output}");
                }
            }

            process.WaitForExit(); // drains the redirected output
            lock (output)
            {
                return (process.ExitCode, output.ToString());
            }
        }
        finally
        {
            Directory.Delete(root, recursive: true);
        }
    }

    public HttpClient CreateClient(string? apiKey = null)
    {
        var client = new HttpClient { BaseAddress = BaseAddress, Timeout = TimeSpan.FromSeconds(30) };
        if (apiKey is not null)
        {
            client.DefaultRequestHeaders.Add("X-Api-Key", apiKey);
        }

        return client;
    }

    /// <summary>A client whose connections come from <paramref name="local"/> (any 127.x.y.z on Linux: another client address).</summary>
    public HttpClient CreateClientFrom(IPAddress local)
    {
        var handler = new SocketsHttpHandler
        {
            ConnectCallback = async (context, ct) =>
            {
                var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
                try
                {
                    socket.Bind(new IPEndPoint(local, 0));
                    await socket.ConnectAsync(context.DnsEndPoint, ct);
                    return new NetworkStream(socket, ownsSocket: true);
                }
                catch
                {
                    socket.Dispose();
                    throw;
                }
            },
        };
        return new HttpClient(handler) { BaseAddress = BaseAddress, Timeout = TimeSpan.FromSeconds(30) };
    }

    public bool HasExited => _process.HasExited;

    /// <summary>Kills the process (SIGKILL) and keeps its folders, for a test that starts another process on them.</summary>
    public async Task KillAsync()
    {
        if (!_process.HasExited)
        {
            _process.Kill(entireProcessTree: true);
            await _process.WaitForExitAsync();
        }
    }

    public async ValueTask DisposeAsync()
    {
        if (!_process.HasExited)
        {
            _process.Kill(entireProcessTree: true);
            await _process.WaitForExitAsync();
        }

        _process.Dispose();
        try
        {
            Directory.Delete(_root, recursive: true);
        }
        catch (IOException)
        {
        }
    }

    private void Append(string? line)
    {
        if (line is null)
        {
            return;
        }

        lock (_output)
        {
            if (_output.Length < 4_000_000)
            {
                _output.AppendLine(line);
            }
        }
    }

    private static string BuildOutput(string project)
    {
        // The test assembly lives in tests/Har.Service.Tests/bin/<Configuration>/net10.0/.
        var configuration = new DirectoryInfo(AppContext.BaseDirectory).Parent!.Name;
        return Path.Combine(Har.Testing.TestPaths.RepoRoot, project, "bin", configuration, "net10.0");
    }
}
