// Consumer test "host:all" (.ci/consumer/run.py): a generic host referencing the four packed Har packages and
// Microsoft.Extensions.Hosting, with all four AddHar* calls, must start (options validated on start), resolve
// every service those calls registered (keyed services by their key) and stop. Runs in a fresh folder holding the
// committed models under models/; its state goes to har-data/ there.
using Har.Audit;
using Har.Deployment;
using Har.Drift;
using Har.Inference;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;

Directory.CreateDirectory("har-data");

// A reference profile for AddHarDrift. Drift statistics are not under test here, only that the profile the
// options name loads; the frames are a deterministic 50 Hz signal (still phone, slow sway), not measurements.
var profileBuilder = new ReferenceProfileBuilder(["ax", "ay", "az", "gx", "gy", "gz"]);
for (var subject = 0; subject < 3; subject++)
{
    var frames = new float[6000 * 6];
    for (var i = 0; i < 6000; i++)
    {
        var t = i / 50.0;
        frames[i * 6 + 0] = (float)(0.05 * Math.Sin(t + subject));
        frames[i * 6 + 1] = (float)(0.05 * Math.Cos(1.3 * t + subject));
        frames[i * 6 + 2] = (float)(1 + 0.02 * Math.Sin(0.7 * t));
        frames[i * 6 + 3] = (float)(0.01 * Math.Sin(2.1 * t + subject));
        frames[i * 6 + 4] = (float)(0.01 * Math.Cos(1.7 * t));
        frames[i * 6 + 5] = (float)(0.01 * Math.Sin(0.9 * t + 2 * subject));
    }

    profileBuilder.AddRecording($"subject-{subject}", frames);
}

profileBuilder.Build("consumer-test signal").Save("har-data/profile.json");
using (var key = AuditSigningKey.Generate("consumer.test/har"))
{
    key.Save("har-data/audit.key");
}

var builder = Host.CreateApplicationBuilder(args);
var before = builder.Services.ToHashSet();
builder.Services.AddHarInference()
    .AddModel("1.0.0", "models/har-cnn-bilstm-1.0.0.onnx")
    .AddModel("1.1.0", "models/har-cnn-bilstm-1.1.0.onnx");
builder.Services.AddHealthChecks().AddHarInference();
builder.Services.AddHarDrift(o => o.ProfilePath = "har-data/profile.json");
builder.Services.AddHarAudit(o =>
{
    o.Directory = "har-data/audit";
    o.Origin = "consumer.test/har";
    o.SigningKeyPath = "har-data/audit.key";
});
builder.Services.AddHarDeployment(o => o.RegistryPath = "har-data/registry");
var added = builder.Services.Where(d => !before.Contains(d)).ToList();

using var host = builder.Build();
await host.StartAsync();

// The registry starts empty: register a model, as a first deployment would (the first version becomes current).
var registry = host.Services.GetRequiredService<ModelRegistry>();
var registered = registry.Register("models/har-cnn-bilstm-1.0.0.onnx");
if (registry.CurrentVersion != registered.Version)
{
    Console.Error.WriteLine($"the first registered version {registered.Version} did not become current ({registry.CurrentVersion ?? "none"})");
    return 1;
}

var resolved = 0;
foreach (var d in added)
{
    if (d.ServiceType.IsGenericTypeDefinition)
    {
        continue; // open generics (options plumbing) are resolved through their closed uses below
    }

    object service = d.IsKeyedService
        ? host.Services.GetRequiredKeyedService(d.ServiceType, d.ServiceKey)
        : host.Services.GetRequiredService(d.ServiceType);
    Console.WriteLine($"resolved {Describe(d.ServiceType)}{(d.IsKeyedService ? $" [{d.ServiceKey}]" : "")} -> {service.GetType().Name}");
    resolved++;
}

if (resolved == 0)
{
    Console.Error.WriteLine("the AddHar* calls registered no service");
    return 1;
}

await host.StopAsync();
Console.WriteLine($"host started, resolved all {resolved} services the four AddHar* calls registered, stopped");
return 0;

static string Describe(Type t) => t.IsGenericType
    ? $"{t.Name[..t.Name.IndexOf('`')]}<{string.Join(", ", t.GetGenericArguments().Select(Describe))}>"
    : t.Name;
