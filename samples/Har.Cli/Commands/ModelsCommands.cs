using System.CommandLine;
using System.Globalization;
using System.Text.Json;
using Har.Audit;
using Har.Deployment;
using Har.Inference;

namespace Har.Cli.Commands;

/// <summary><c>har models …</c>: a model registry on a directory (register, list, verify).</summary>
internal static class ModelsCommands
{
    public static Command Create() => RolloutCommands.WrapErrors(new("models", "Register, list and verify model versions in a registry directory (v1.2.0/model.onnx, config.json, deployment_record.json, current).")
    {
        Register(),
        List(),
        Verify(),
        Decide(retire: true),
        Decide(retire: false),
    });

    internal static Option<DirectoryInfo> RegistryOption() => new("--registry") { Description = "The registry directory.", Required = true };

    /// <summary>The registry directory, optional for the read commands that also read a fleet's database.</summary>
    internal static Option<DirectoryInfo?> RegistryOrFleetOption() => new("--registry") { Description = "The registry directory (without it: the fleet's database, --connection or $" + AuditCommands.ConnectionEnvironmentVariable + ")." };

    /// <summary>Opens a fleet's database to read it (nothing is created or migrated).</summary>
    internal static FleetStore OpenFleet(string? connection) =>
        FleetStore.OpenExisting(AuditCommands.ConnectionString(connection)
            ?? throw new ArgumentException($"Pass --registry <dir> for a registry folder, or --connection <connection string> (or set {AuditCommands.ConnectionEnvironmentVariable}) for a fleet's database."));

    internal static Option<DirectoryInfo?> AuditOption() => new("--audit") { Description = "The audit log the versions were registered through: the reference for their hashes (default: <registry>/.audit). A command that changes it (register, rollout) needs it not open in another process (stop the service first); `models verify` only reads it, also while the service runs." };

    /// <summary>Opens (or creates) the registry's audit log: for <c>models register</c>, which may create the registry.</summary>
    internal static AuditLog OpenAudit(DirectoryInfo registry, DirectoryInfo? audit) =>
        AuditLog.Open(new AuditLogOptions { Directory = audit?.FullName ?? Path.Combine(registry.FullName, ".audit"), EnableMetrics = false });

    /// <summary>
    /// The folder of a registry a command reads or steers: one that does not exist is a mistyped path, refused rather
    /// than created (only <c>models register</c> creates a registry).
    /// </summary>
    internal static string ExistingRegistry(DirectoryInfo registry) =>
        registry.Exists
            ? registry.FullName
            : throw new DirectoryNotFoundException($"No registry at '{registry.FullName}'; 'har models register <model.onnx> --registry <dir>' creates one.");

    /// <summary>
    /// Opens the audit log of an existing registry (<c>--audit</c>, default <c>&lt;registry&gt;/.audit</c>); a log that
    /// does not exist is refused: opening it would create a new, empty one that holds none of the registrations.
    /// <paramref name="readOnly"/> for a command that only reads the log (<c>models verify</c>): it may be open in the
    /// service, and nothing in it changes (a refusal is then reported, not appended).
    /// </summary>
    internal static AuditLog OpenExistingAudit(DirectoryInfo registry, DirectoryInfo? audit, bool readOnly = false)
    {
        var root = ExistingRegistry(registry);
        var directory = audit?.FullName ?? Path.Combine(root, ".audit");
        if (!File.Exists(Path.Combine(directory, "entries.log")))
        {
            throw new DirectoryNotFoundException($"No audit log at '{directory}' (entries.log is missing); pass --audit with the log the registry was registered through (a service's is <data>/audit).");
        }

        return readOnly ? AuditCommands.OpenReadOnly(directory) : AuditLog.Open(new AuditLogOptions { Directory = directory, EnableMetrics = false });
    }

    private static Command Register()
    {
        var registry = RegistryOption();
        var audit = AuditOption();
        var model = new Argument<FileInfo>("model") { Description = "The .onnx file to register; its card's version names the folder." };
        var deployer = new Option<string?>("--deployer") { Description = "Who registers it (default: the OS user)." };
        var approvedBy = new Option<string?>("--approved-by") { Description = "Who approved it." };
        var target = new Option<string>("--target") { Description = "The target environment.", DefaultValueFactory = _ => "local" };
        var runId = new Option<string?>("--run-id") { Description = "The training run id." };
        var command = new Command("register", "Copy a model into the registry, hash it (SHA-256) and write its card and deployment record.") { model, registry, audit, deployer, approvedBy, target, runId };
        command.SetAction(async (parse, ct) =>
        {
            // Checked before the registry and its audit log are opened: opening them creates them, and a mistyped model
            // path left an empty registry behind.
            var modelPath = parse.GetValue(model)!.FullName;
            if (Directory.Exists(modelPath))
            {
                throw new InvalidDataException($"'{modelPath}' is a folder; expected the .onnx model file to register (e.g. models/har-cnn-bilstm-1.2.0.onnx).");
            }

            if (!File.Exists(modelPath))
            {
                throw new FileNotFoundException($"'{modelPath}' does not exist; expected the .onnx model file to register (e.g. models/har-cnn-bilstm-1.2.0.onnx).", modelPath);
            }

            await using var log = OpenAudit(parse.GetValue(registry)!, parse.GetValue(audit));
            var reg = new ModelRegistry(parse.GetValue(registry)!.FullName, log);
            RegisteredModel registered;
            try
            {
                registered = reg.Register(modelPath, new ModelRegistrationOptions
                {
                    Deployer = parse.GetValue(deployer),
                    ApprovedBy = parse.GetValue(approvedBy),
                    EnvironmentTarget = parse.GetValue(target)!,
                    RunId = parse.GetValue(runId),
                    Method = "har models register",
                });
            }
            catch (Exception ex) when (ex is ModelCardException or ModelRegistryUnavailableException)
            {
                await Console.Error.WriteLineAsync($"har: {ex.Message}").ConfigureAwait(false);
                return 2;
            }

            Console.Out.WriteLine($"registered {registered.ModelName} {registered.Version} in {Path.GetFileName(registered.Directory)} (sha256 {registered.Sha256}){(reg.CurrentVersion == registered.Version ? "; it is the current version" : string.Empty)}");
            return 0;
        });
        return command;
    }

    /// <summary><c>har models retire|reinstate VERSION --reason …</c>: an audited decision in the registry's audit log.</summary>
    private static Command Decide(bool retire)
    {
        var registry = RegistryOption();
        var audit = AuditOption();
        var version = new Argument<string>("version") { Description = retire ? "The registered version to retire, e.g. 1.1.0." : "The retired version to reinstate." };
        var reason = new Option<string>("--reason") { Description = "Why (recorded in the audit log; at most 2,048 characters).", Required = true };
        var actor = new Option<string?>("--actor") { Description = "Who decides (default: the OS user)." };
        var command = retire
            ? new Command("retire", "Take a version out of service: no rollout starts with it and no rollback goes to it until it is reinstated. Refused for the current version, a running rollout's champion or candidate, and the champion a promoted rollout can still roll back to. Its files stay, verified as before; the decision is an entry of the audit log.") { version, registry, audit, reason, actor }
            : new Command("reinstate", "Take a retirement back (an entry of the audit log): the version can be rolled out and rolled back to again.") { version, registry, audit, reason, actor };
        command.SetAction(async (parse, ct) =>
        {
            await using var log = OpenExistingAudit(parse.GetValue(registry)!, parse.GetValue(audit));
            var reg = new ModelRegistry(ExistingRegistry(parse.GetValue(registry)!), log);
            try
            {
                if (retire)
                {
                    Console.Out.WriteLine($"retired: {reg.Retire(parse.GetValue(version)!, parse.GetValue(reason)!, parse.GetValue(actor))}");
                }
                else
                {
                    var v = parse.GetValue(version)!;
                    Console.Out.WriteLine(reg.Reinstate(v, parse.GetValue(reason)!, parse.GetValue(actor))
                        ? $"reinstated {reg.Get(v).Version}: it can be rolled out again"
                        : $"{reg.Get(v).Version} is not retired; nothing recorded");
                }
            }
            catch (Exception ex) when (ex is ModelInUseException or ModelRegistryUnavailableException)
            {
                await Console.Error.WriteLineAsync($"har: {ex.Message}").ConfigureAwait(false);
                return 2;
            }

            return 0;
        });
        return command;
    }

    private static Command List()
    {
        var registry = RegistryOrFleetOption();
        var connection = AuditCommands.ConnectionOption("The fleet's PostgreSQL connection string (read when --registry is not given): the versions whose files the fleet stores.");
        var json = new Option<bool>("--json") { Description = "Print JSON." };
        var command = new Command("list", "List the registered versions of a registry folder (--registry) or of a fleet in PostgreSQL (--connection or $" + AuditCommands.ConnectionEnvironmentVariable + ").") { registry, connection, json };
        command.SetAction(parse =>
        {
            string? current;
            IReadOnlyList<(string Version, string ModelName, string Sha256, long Parameters, DateTimeOffset RegisteredAt, string DeploymentId)> models;
            IReadOnlyDictionary<string, ModelRetirement> retired;
            if (parse.GetValue(registry) is { } dir)
            {
                // The registry's own log (<registry>/.audit), read-only, tells which versions are retired; a registry
                // without one has none.
                var logDirectory = Path.Combine(ExistingRegistry(dir), ".audit");
                using var log = File.Exists(Path.Combine(logDirectory, "entries.log")) ? AuditCommands.OpenReadOnly(logDirectory) : null;
                var reg = new ModelRegistry(ExistingRegistry(dir), log);
                current = reg.CurrentVersion;
                models = [.. reg.List().Select(m => (m.Version, m.ModelName, m.Sha256, m.Parameters, m.RegisteredAt, m.DeploymentId))];
                retired = reg.GetRetirements();
            }
            else
            {
                using var store = OpenFleet(parse.GetValue(connection));
                current = store.ReadHead().Current;
                models = [.. store.ListModels().Select(Describe).OrderBy(m => m.Version, Comparer<string>.Create(ModelRegistry.CompareVersions))];
                using var log = AuditLog.Open(new AuditLogOptions { ConnectionString = AuditCommands.ConnectionString(parse.GetValue(connection))!, EnableMetrics = false });
                retired = new RegistryRetirements(log).All();
            }

            if (parse.GetValue(json))
            {
                Console.Out.WriteLine(JsonSerializer.Serialize(models.Select(m => new Dictionary<string, object?>
                {
                    ["version"] = m.Version,
                    ["name"] = m.ModelName,
                    ["sha256"] = m.Sha256,
                    ["parameters"] = m.Parameters,
                    ["registered_at"] = m.RegisteredAt,
                    ["deployment_id"] = m.DeploymentId,
                    ["current"] = m.Version == current,
                    ["retired"] = retired.TryGetValue(m.Version, out var r) ? new Dictionary<string, object?> { ["reason"] = r.Reason, ["by"] = r.Actor, ["at"] = r.RetiredAt, ["audit_index"] = r.AuditIndex } : null,
                }), CliJson.Indented));
                return 0;
            }

            foreach (var m in models)
            {
                Console.Out.WriteLine(string.Create(CultureInfo.InvariantCulture, $"{(m.Version == current ? "*" : " ")} {m.Version,-10} {m.ModelName,-16} {m.Parameters,10:N0} params  sha256 {m.Sha256[..16]}…  {m.RegisteredAt:u}{(retired.TryGetValue(m.Version, out var r) ? $"  RETIRED by {r.Actor} at {r.RetiredAt:u}: {r.Reason}" : string.Empty)}"));
            }

            return 0;
        });
        return command;
    }

    private static Command Verify()
    {
        var registry = RegistryOrFleetOption();
        var audit = AuditOption();
        var connection = AuditCommands.ConnectionOption("The fleet's PostgreSQL connection string (used when --registry is not given): every version the fleet stores is checked against the fleet's audit log, in the same database.");
        var version = new Argument<string?>("version") { Description = "The version to verify (default: every version).", Arity = ArgumentArity.ZeroOrOne };
        var command = new Command("verify", "Check each version's model.onnx, config.json and deployment_record.json (in a registry folder, or as a fleet stores them in PostgreSQL) against the hashes its audit log registered; exit code 1 if any disagrees.") { version, registry, audit, connection };
        command.SetAction(async (parse, ct) =>
        {
            if (parse.GetValue(registry) is null)
            {
                return await VerifyFleetAsync(parse.GetValue(connection), parse.GetValue(version)).ConfigureAwait(false);
            }

            await using var log = OpenExistingAudit(parse.GetValue(registry)!, parse.GetValue(audit), readOnly: true);
            var reg = new ModelRegistry(ExistingRegistry(parse.GetValue(registry)!), log);
            // Every version in a folder and every version the audit log registered: a registered version whose folder
            // was deleted (or whose record no longer parses, so it is not listed) is a FAIL, not a silent omission.
            var versions = parse.GetValue(version) is { } v
                ? [v]
                : reg.List().Select(m => m.Version).Union(reg.RegisteredVersions(), StringComparer.Ordinal).Order(Comparer<string>.Create(ModelRegistry.CompareVersions)).ToList();
            var bad = 0;
            var unanchored = false;
            foreach (var item in versions)
            {
                var result = reg.Verify(item);
                Console.Out.WriteLine(result.IsValid ? $"ok    {result.Version} sha256 {result.ActualSha256}" : $"FAIL  {result.Version}: {string.Join(" ", result.Problems)}");
                bad += result.IsValid ? 0 : 1;
                unanchored |= result.Problems.Any(p => p.Contains("no registration in the audit log", StringComparison.Ordinal));
            }

            if (unanchored)
            {
                await Console.Error.WriteLineAsync($"har: the audit log at '{parse.GetValue(audit)?.FullName ?? Path.Combine(parse.GetValue(registry)!.FullName, ".audit")}' does not hold these registrations; pass --audit with the log the registry was registered through (a service's is <data>/audit).").ConfigureAwait(false);
            }

            return bad == 0 ? 0 : 1;
        });
        return command;
    }

    /// <summary>A stored version's listing, from its deployment record.</summary>
    private static (string Version, string ModelName, string Sha256, long Parameters, DateTimeOffset RegisteredAt, string DeploymentId) Describe((string Version, string Sha256, long Size, byte[] Record, DateTimeOffset WrittenAt) row)
    {
        var record = (DeploymentRecord)AuditRecord.Parse(AuditRecordKind.Deployment, row.Record);
        return (row.Version, record.Model.Name, row.Sha256, record.Model.Parameters, record.Timestamp, record.DeploymentId);
    }

    /// <summary><c>har models verify --connection</c>: every stored version (or one) against the fleet's audit log; reads only.</summary>
    private static async Task<int> VerifyFleetAsync(string? connection, string? only)
    {
        using var store = OpenFleet(connection);
        await using var log = AuditLog.Open(new AuditLogOptions { ConnectionString = AuditCommands.ConnectionString(connection)!, EnableMetrics = false });
        var bad = 0;
        var seen = 0;
        foreach (var result in ModelRegistry.VerifyShared(store, log, TimeProvider.System))
        {
            if (only is not null && result.Version != ModelVersionName.Normalize(only))
            {
                continue;
            }

            seen++;
            Console.Out.WriteLine(result.IsValid ? $"ok    {result.Version} sha256 {result.ActualSha256}" : $"FAIL  {result.Version}: {string.Join(" ", result.Problems)}");
            bad += result.IsValid ? 0 : 1;
        }

        if (only is not null && seen == 0)
        {
            await Console.Error.WriteLineAsync($"har: the fleet's database stores no version {only}.").ConfigureAwait(false);
            return 1;
        }

        return bad == 0 ? 0 : 1;
    }
}
