using System.CommandLine;
using System.Globalization;
using System.Text.Json;
using Har.Cli.Demo;
using Har.Deployment;
using Spectre.Console;

namespace Har.Cli.Commands;

/// <summary><c>har demo</c>: the main job — every package on the bundled models, in under a minute.</summary>
internal static class DemoCommand
{
    /// <summary>The most sessions the demo streams: the UCI HAPT test split's subjects.</summary>
    private const int MaxSessions = 9;

    public static Command Create()
    {
        var data = new Option<DirectoryInfo?>("--data") { Description = "A folder in the UCI HAPT layout (default: ../shared/data/uci-hapt or $HAR_SHARED when present; otherwise synthetic data)." };
        var synthetic = new Option<bool>("--synthetic") { Description = "Use the built-in synthetic IMU generator even when the HAPT data is present." };
        var seed = new Option<int>("--seed") { Description = "Seeds the synthetic data, the simulated devices and the injected faults.", DefaultValueFactory = _ => 1 };
        var sessions = new Option<int>("--sessions") { Description = "How many test sessions to stream (one per subject), 1 to 9: the UCI HAPT test split has 9 subjects, and the synthetic data stands in for it.", DefaultValueFactory = _ => 4 }
            .InRange(1, MaxSessions, "the demo streams one session per test subject, and the UCI HAPT test split has 9");
        var fault = new Option<string>("--fault") { Description = "The fault injected into the second canary: errors (20 % failures), latency (3×) or broken-normalization.", DefaultValueFactory = _ => "errors" };
        fault.AcceptOnlyFromAmong("errors", "latency", "broken-normalization");
        var output = new Option<DirectoryInfo?>("--out") { Description = "Where to keep the registry, audit log, signing key and drift profile (default: a new temporary folder, printed at the end)." }
            .NotAFile("a folder for the demo's registry, audit log, signing key and drift profile");
        var json = new Option<bool>("--json") { Description = "Print a machine-readable summary on stdout (the progress display goes to stderr)." };
        var models = new Option<DirectoryInfo?>("--models-dir") { Description = "A folder holding the champion and candidate .onnx files (default: the bundled models).", Hidden = true };
        var command = new Command("demo", "Run the whole Har story on the bundled models: stream sensor data, predict activities, report drift, promote a healthy canary, roll back a faulty one, verify the audit log.")
        {
            data, synthetic, seed, sessions, fault, output, json, models,
        };
        command.Excludes(synthetic, data, "--synthetic streams generated data and --data names real data to stream; pass one");
        command.SetAction(async (parse, ct) =>
        {
            var asJson = parse.GetValue(json);
            var console = asJson
                ? AnsiConsole.Create(new AnsiConsoleSettings { Out = new AnsiConsoleOutput(Console.Error) })
                : AnsiConsole.Console;
            if ((asJson ? Console.IsErrorRedirected : Console.IsOutputRedirected) && console.Profile.Width < 120)
            {
                // Logs and CI: wide enough for the tables.
                console.Profile.Width = 120;
            }

            var (champion, candidate) = ResolveModels(parse.GetValue(models));
            var folder = parse.GetValue(synthetic) ? null : parse.GetValue(data)?.FullName ?? SharedData.FindHapt();
            if (parse.GetValue(data) is { } d && !d.Exists)
            {
                throw new DirectoryNotFoundException($"--data '{d.FullName}' does not exist; expected a folder in the UCI HAPT layout.");
            }

            var options = new DemoOptions
            {
                HaptFolder = folder,
                OutputDirectory = parse.GetValue(output)?.FullName ?? Directory.CreateTempSubdirectory("har-demo-").FullName,
                ChampionPath = champion,
                CandidatePath = candidate,
                Seed = parse.GetValue(seed),
                Sessions = parse.GetValue(sessions),
                Fault = parse.GetValue(fault) switch
                {
                    "latency" => SimulationFault.Latency,
                    "broken-normalization" => SimulationFault.BrokenNormalization,
                    _ => SimulationFault.Errors,
                },
            };
            var summary = await new DemoRunner(console, options).RunAsync(ct).ConfigureAwait(false);
            if (asJson)
            {
                Console.Out.WriteLine(ToJson(summary));
            }

            return summary.Ok ? 0 : 1;
        });
        return command;
    }

    internal static string ToJson(DemoSummary summary) => JsonSerializer.Serialize(summary, CliJson.Indented);

    /// <summary>The champion (1.0.x) and candidate (1.1.x): the bundled files, or the two lowest versions found in <paramref name="folder"/>.</summary>
    internal static (string Champion, string Candidate) ResolveModels(DirectoryInfo? folder)
    {
        if (folder is null)
        {
            return (BundledModels.Champion, BundledModels.Candidate);
        }

        var bundled = (Path.Combine(folder.FullName, BundledModels.ChampionFile), Path.Combine(folder.FullName, BundledModels.CandidateFile));
        if (File.Exists(bundled.Item1) && File.Exists(bundled.Item2))
        {
            return bundled;
        }

        var cards = folder.Exists
            ? folder.GetFiles("*.onnx").Select(f => (f.FullName, Card: TryLoad(f.FullName))).Where(x => x.Card is not null).OrderBy(x => SemanticVersion.Parse(x.Card!.ModelVersion)).ToList()
            : [];
        if (cards.Count < 2)
        {
            throw new FileNotFoundException(string.Create(CultureInfo.InvariantCulture, $"--models-dir '{folder.FullName}' holds {cards.Count} valid model(s); expected {BundledModels.ChampionFile} and {BundledModels.CandidateFile}, or two models with different versions."));
        }

        return (cards[0].FullName, cards[1].FullName);
    }

    private static Har.Inference.ModelCard? TryLoad(string path)
    {
        try
        {
            return Har.Inference.ModelCard.Load(path);
        }
        catch (Har.Inference.ModelCardException)
        {
            return null;
        }
    }
}
