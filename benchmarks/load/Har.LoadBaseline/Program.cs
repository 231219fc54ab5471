using System.Diagnostics;
using System.Globalization;
using System.Text;
using Har.Inference.Data;
using Har.Deployment;
using Har.Inference;

// Usage:
//   Har.LoadBaseline bodies   <models dir> <hapt dir> <out dir> <windows per request> <count>
//       writes <count> request bodies (JSON and raw float32) of real HAPT test windows for the champion
//   Har.LoadBaseline inprocess <models dir> <body dir> <windows per request> <concurrency> <seconds>
//       drives StreamPredictionPipeline.PredictAsync (router + micro-batcher: what the service's /v1/predict
//       calls once it has parsed a body) from <concurrency> callers, each awaiting one request's windows at a
//       time; prints windows/s.
if (args.Length < 1)
{
    Console.Error.WriteLine("usage: Har.LoadBaseline bodies|inprocess …");
    return 2;
}

return args[0] switch
{
    "bodies" => WriteBodies(args[1], args[2], args[3], int.Parse(args[4], CultureInfo.InvariantCulture), int.Parse(args[5], CultureInfo.InvariantCulture)),
    "inprocess" => await InProcessAsync(args[1], args[2], int.Parse(args[3], CultureInfo.InvariantCulture), int.Parse(args[4], CultureInfo.InvariantCulture), double.Parse(args[5], CultureInfo.InvariantCulture)),
    _ => 2,
};

static string Champion(string modelsDir) =>
    Directory.GetFiles(modelsDir, "*.onnx").OrderBy(f => Version.Parse(ModelCard.Load(f).ModelVersion.Split('-', '+')[0])).First();

static int WriteBodies(string modelsDir, string hapt, string outDir, int windowsPerRequest, int count)
{
    var card = ModelCard.Load(Champion(modelsDir));
    var windowValues = card.WindowLength * card.ChannelCount;
    var sessions = SensorDataset.Load(hapt, "test");
    var windows = new List<float[]>();
    foreach (var s in sessions)
    {
        for (var start = 0; start + card.WindowLength <= s.Length && windows.Count < windowsPerRequest * count; start += card.Stride * 7)
        {
            windows.Add(s.Samples.AsSpan(start * SensorSession.Channels, windowValues).ToArray());
        }
    }

    Directory.CreateDirectory(outDir);
    for (var b = 0; b < count; b++)
    {
        var chunk = Enumerable.Range(0, windowsPerRequest).Select(i => windows[(b * windowsPerRequest + i) % windows.Count]).ToArray();
        var json = new StringBuilder("{\"windows\":[");
        var raw = new byte[windowsPerRequest * windowValues * sizeof(float)];
        for (var i = 0; i < chunk.Length; i++)
        {
            json.Append(i == 0 ? "[" : ",[").AppendJoin(',', chunk[i].Select(v => v.ToString("R", CultureInfo.InvariantCulture))).Append(']');
            Buffer.BlockCopy(chunk[i], 0, raw, i * windowValues * sizeof(float), windowValues * sizeof(float));
        }

        json.Append("]}");
        File.WriteAllText(Path.Combine(outDir, $"body-{b + 1}.json"), json.ToString());
        File.WriteAllBytes(Path.Combine(outDir, $"body-{b + 1}.bin"), raw);
        File.WriteAllBytes(Path.Combine(outDir, $"windows-{b + 1}.f32"), raw);
    }

    Console.WriteLine($"{count} bodies of {windowsPerRequest} windows ({card.WindowLength}×{card.ChannelCount}) from {sessions.Count} HAPT test sessions, model {card}");
    return 0;
}

static async Task<int> InProcessAsync(string modelsDir, string bodyDir, int windowsPerRequest, int concurrency, double seconds)
{
    var registryDir = Directory.CreateTempSubdirectory("har-load-registry-");
    try
    {
        // The service's composition, minus HTTP: a registry with the champion current, the controller with the
        // same model options (private ONNX Runtime threads, 1 intra-op thread per session).
        var registry = new ModelRegistry(registryDir.FullName);
        registry.Register(Champion(modelsDir), new ModelRegistrationOptions { Deployer = "load-baseline", Method = "benchmark", MakeCurrentIfNone = true });
        var options = new RolloutControllerOptions { ModelOptions = () => new HarModelOptions { UseGlobalThreadPool = false, IntraOpThreads = 1 } };
        await using var controller = await RolloutController.OpenAsync(registry, options);

        var pipeline = new StreamPredictionPipeline(controller, new StreamWindower(ModelCard.Load(Champion(modelsDir))));

        // One contiguous buffer of windows per request body, exactly what the endpoint hands the pipeline.
        var requests = Directory.GetFiles(bodyDir, "windows-*.f32").Select(f =>
        {
            var bytes = File.ReadAllBytes(f);
            var values = new float[bytes.Length / sizeof(float)];
            Buffer.BlockCopy(bytes, 0, values, 0, bytes.Length);
            return values;
        }).ToArray();

        async Task<long> Run(TimeSpan duration)
        {
            long windows = 0;
            var watch = Stopwatch.StartNew();
            var callers = Enumerable.Range(0, concurrency).Select(async c =>
            {
                var n = 0L;
                var predictions = new Prediction[windowsPerRequest];
                for (var r = c; watch.Elapsed < duration; r++)
                {
                    // No stream id, like the load test's bodies: each request is routed as its own key.
                    await pipeline.PredictAsync(null, requests[r % requests.Length], predictions);
                    n += windowsPerRequest;
                }

                Interlocked.Add(ref windows, n);
            }).ToArray();
            await Task.WhenAll(callers);
            return windows;
        }

        await Run(TimeSpan.FromSeconds(3)); // warm-up
        var clock = Stopwatch.StartNew();
        var scored = await Run(TimeSpan.FromSeconds(seconds));
        var rate = scored / clock.Elapsed.TotalSeconds;
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"inprocess_windows_per_second={rate:0}"));
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"inprocess: {scored} windows in {clock.Elapsed.TotalSeconds:0.0} s from {concurrency} callers × {windowsPerRequest} windows"));
        return 0;
    }
    finally
    {
        registryDir.Delete(recursive: true);
    }
}
