using Har.Audit;
using Har.Deployment;

namespace Har.Service.Infrastructure;

/// <summary>First-start defaults (a checkpoint signing key, the bundled models in the registry) and the wiring of the serving path.</summary>
internal static class Bootstrap
{
    /// <summary>
    /// Registers Har.Deployment (registry, the one serving pipeline, the rollout controller and its loop) and,
    /// when a reference profile exists, Har.Drift's monitor, which the pipeline feeds with every frame it serves
    /// (stream ingest and whole windows alike).
    /// </summary>
    public static WebApplicationBuilder AddServing(this WebApplicationBuilder builder, ServiceOptions options, string dataDirectory, string modelsDirectory)
    {
        builder.Services.AddHarDeployment(o =>
        {
            o.RegistryPath = Path.Combine(dataDirectory, "registry");
            o.Rollouts.BuiltInStrategies.AnalysisInterval = options.RolloutAnalysisInterval;
            o.Rollouts.BuiltInStrategies.RequireApproval = options.RequireApproval;
            o.Rollouts.BuiltInStrategies.CanaryShadowPercent = options.CanaryShadowPercent;
            o.Rollouts.RequiredApprovals = options.RequiredApprovals;
            o.Rollouts.StarterMayApprove = options.StarterMayApprove;
            o.Rollouts.MinCandidateAccuracy = options.MinCandidateAccuracy;
            o.Rollouts.MinCandidateMacroF1 = options.MinCandidateMacroF1;
            o.Serving.Model.UseGlobalThreadPool = false;
            o.Serving.Model.IntraOpThreads = 1;
            o.Serving.Model.RunTimeout = options.ModelRunTimeout;
            o.Serving.MaxStreams = options.MaxStreams;
            o.Serving.StreamIdleTimeout = options.StreamIdleTimeout;
            o.Serving.ContextFrames = options.ContextFrames;

            // Set (ConnectionStrings__Har): the rollout state and the registry's current pointer live in PostgreSQL, shared by
            // every replica; one replica leads (lease), every replica follows the traffic plan. Unset: rollout.json, one process.
            o.Rollouts.ConnectionString = builder.Configuration.GetConnectionString("Har");
        });

        // HTTP webhooks: rollout hooks the controller calls at their phase (Webhooks.cs); one shared client.
        if (options.Webhooks.Count > 0)
        {
            var client = new HttpClient(new SocketsHttpHandler { PooledConnectionLifetime = TimeSpan.FromMinutes(2) }) { Timeout = Timeout.InfiniteTimeSpan };
            foreach (var webhook in options.Webhooks)
            {
                builder.Services.AddSingleton<IRolloutHook>(sp => new HttpWebhook(webhook, client, sp.GetRequiredService<TimeProvider>()));
            }
        }

        var profilePath = options.DriftProfilePath ?? Path.Combine(modelsDirectory, "hapt-train-profile.json");
        if (File.Exists(profilePath))
        {
            // Each device's drift state outlives the process (its alarm, and the earlier minutes its within-device checks
            // compare with): one process keeps it beside rollout.json; a fleet in its PostgreSQL, one row a device, so the
            // state follows a device the proxy moves to another replica (unless DriftStatePath asks for a file).
            var connectionString = builder.Configuration.GetConnectionString("Har");
            var fleetState = options.DriftStatePath is null && connectionString is { Length: > 0 };
            var statePath = fleetState ? null : options.DriftStatePath ?? Path.Combine(dataDirectory, "registry", ".rollout", "drift-state.bin");
            if (fleetState)
            {
                builder.Services.AddSingleton(_ => new FleetDriftStateStore(connectionString!));
                builder.Services.AddOptions<Har.Drift.DriftMonitorOptions>().Configure<FleetDriftStateStore>((o, store) => o.StateStore = store);
            }

            builder.Services.AddHarDrift(o =>
            {
                o.ProfilePath = profilePath;
                o.StatePath = statePath;
                o.WindowLength = options.DriftWindowFrames;
                o.ScoreInterval = options.DriftScoreInterval;
                o.MaxDevices = options.DriftMaxDevices;
                o.MonitorName = "streams";
            });

            // The pipeline feeds the per-device monitor (physics checks on each device's own stream; output drift pooled).
            builder.Services.AddSingleton<DriftLoop>();
            builder.Services.AddHostedService(sp => sp.GetRequiredService<DriftLoop>());
        }

        return builder;
    }

    public const string Origin = "har.local/har-service";

    /// <summary>
    /// The signing key file (outside the log directory), generated once, even when replicas sharing the volume start
    /// together; <paramref name="generated"/> says whether this start generated it (<see cref="LostSigningKey"/> checks
    /// such a key against the log's checkpoints).
    /// </summary>
    public static string EnsureSigningKey(string dataDirectory, out bool generated)
    {
        var keys = Path.Combine(dataDirectory, "keys");
        var path = Path.Combine(keys, "audit.key");
        generated = false;
        if (!File.Exists(path))
        {
            Directory.CreateDirectory(keys);
            var temp = Path.Combine(keys, $".audit.key.{Guid.NewGuid():N}.tmp");
            using (var key = AuditSigningKey.Generate(Origin))
            {
                key.Save(temp);
            }

            // Published without overwriting (link, then unlink): the first replica's key wins and the others use it.
            try
            {
                File.Move(temp, path, overwrite: false);
                generated = true;
            }
            catch (IOException) when (File.Exists(path))
            {
                File.Delete(temp);
            }
        }

        var verifier = Path.Combine(keys, "audit.vkey");
        if (!File.Exists(verifier))
        {
            using var key = AuditSigningKey.Load(path);
            var temp = Path.Combine(keys, $".audit.vkey.{Guid.NewGuid():N}.tmp");
            File.WriteAllText(temp, key.VerifierKey + "\n");
            File.Move(temp, verifier, overwrite: true);
        }

        return path;
    }

    /// <summary>
    /// Registers the bundled models (oldest first, so 1.0.0 becomes current in an empty registry) and
    /// re-verifies the registry every 15 minutes. Seeding is safe when replicas start together on one volume:
    /// they take turns, and each anchors the versions another registered in its own audit log.
    /// </summary>
    /// <summary>
    /// Why the service must not start on this registry: it holds no version while its audit log records registrations,
    /// so its folders were lost (deleted, or a restore or volume that left them out) and the log kept. <see langword="null"/>
    /// when the registry holds versions or the log records none (a first start).
    /// </summary>
    public static string? LostRegistry(ModelRegistry registry, string registryPath, AuditLog log)
    {
        if (registry.List().Count > 0)
        {
            return null;
        }

        var first = log.Query(new AuditQuery { EventType = "registry.registered", PageSize = 1 }).Entries;
        if (first.Count == 0)
        {
            return null;
        }

        var entity = first[0].Record is AuditEvent e ? e.EntityId : "a model";
        return $"the registry folder '{registryPath}' holds no registered version, but its audit log '{log.Directory}' records registrations (the first: {entity}, entry {first[0].Index}): the registry was lost while its log was kept. Restore the data folder from a backup (har backup restore), or to start over move the audit log away too. Nothing was seeded or changed.";
    }

    /// <summary>
    /// Why the service must not start with the signing key this start generated: the log holds a checkpoint signed by
    /// another key, so the key was lost (deleted, or a restore or volume that left it out) and every checkpoint signed
    /// from now on would name a key the log's verifiers do not know. The generated key is removed, so the next start
    /// finds the same state. <see langword="null"/> when the key was not generated now or the log has no checkpoint.
    /// </summary>
    public static string? LostSigningKey(AuditLog log, string keyPath, bool generated)
    {
        if (!generated || log.LatestCheckpoint is not { } latest)
        {
            return null;
        }

        string verifier;
        using (var key = AuditSigningKey.Load(keyPath))
        {
            if (latest.Verify(key.ToVerifierKey()))
            {
                return null;
            }

            verifier = key.VerifierKey;
        }

        File.Delete(keyPath);
        var vkey = Path.Combine(Path.GetDirectoryName(keyPath)!, "audit.vkey");
        if (File.Exists(vkey) && File.ReadAllText(vkey).Trim() == verifier)
        {
            File.Delete(vkey);
        }

        if (!Directory.EnumerateFileSystemEntries(Path.GetDirectoryName(keyPath)!).Any())
        {
            Directory.Delete(Path.GetDirectoryName(keyPath)!); // created for the key generated now
        }

        return $"the checkpoint signing key '{keyPath}' is missing, and its audit log '{log.Directory}' holds a checkpoint of {latest.TreeSize} entries signed by {Signer(latest)}: a new key would sign checkpoints its verifiers do not know. Restore the key from a backup (har backup restore: archives hold it unless Har:Service:Backup:IncludeSigningKey is false). To sign with a new key on purpose, create it at that path first (har audit keygen --name {Origin} --out <the path>) and start again: the change is then recorded in the log (audit.signing_key_changed). Nothing was generated or changed.";
    }

    /// <summary>
    /// Records in the log that the checkpoints from now on are signed by another key than its latest checkpoint's (a key
    /// replaced on purpose, or a replica given another key than the others): an <c>audit.signing_key_changed</c> event
    /// (Warning) naming both, appended before the new key signs anything. Returns the event's text, or
    /// <see langword="null"/> when the key is the latest checkpoint's (or there is none).
    /// </summary>
    public static async Task<string?> RecordSigningKeyChangeAsync(AuditLog log, string keyPath, CancellationToken ct)
    {
        if (log.LatestCheckpoint is not { } latest)
        {
            return null;
        }

        using var key = AuditSigningKey.Load(keyPath);
        if (latest.Verify(key.ToVerifierKey()))
        {
            return null;
        }

        var summary = $"the checkpoints after entry {latest.TreeSize} are signed by {key.Name} (key id {key.KeyId:x8}), no longer by {Signer(latest)}";
        await log.AppendAsync(new AuditEvent
        {
            EventType = "audit.signing_key_changed",
            EntityType = "audit",
            EntityId = log.Origin,
            Severity = AuditSeverity.Warning,
            Actor = "har-service",
            Timestamp = DateTimeOffset.UtcNow,
            ActionDetails = System.Text.Json.JsonSerializer.SerializeToElement(new Dictionary<string, object>
            {
                ["summary"] = summary,
                ["previous_checkpoint_size"] = latest.TreeSize,
                ["previous_signer"] = Signer(latest),
                ["verifier_key"] = key.VerifierKey,
            }),
        }, ct);
        return summary;
    }

    /// <summary>The signers a checkpoint note names: each signature line's key name and key id (the C2SP signed-note format: "— name base64(key id ‖ signature)").</summary>
    internal static string Signer(SignedCheckpoint checkpoint)
    {
        var signers = new List<string>();
        foreach (var line in checkpoint.NoteText.Split('\n'))
        {
            var parts = line.Split(' ');
            if (parts.Length == 3 && parts[0] == "\u2014")
            {
                var bytes = new byte[parts[2].Length];
                signers.Add(Convert.TryFromBase64String(parts[2], bytes, out var n) && n >= 4
                    ? $"{parts[1]} (key id {Convert.ToHexStringLower(bytes, 0, 4)})"
                    : parts[1]);
            }
        }

        return signers.Count == 0 ? "an unknown key" : string.Join(", ", signers);
    }

    public static void SeedRegistry(ModelRegistry registry, string modelsDirectory, ILogger logger)
    {
        if (Directory.Exists(modelsDirectory))
        {
            var before = registry.List().Select(static m => m.Version).ToHashSet(StringComparer.Ordinal);
            registry.Seed(Directory.GetFiles(modelsDirectory, "*.onnx"), new ModelRegistrationOptions
            {
                Deployer = "har-service",
                Method = "bundled with the service",
                MakeCurrentIfNone = true,
            });

            // Found from outside (an upgrade): a release's new bundled models were registered into an existing registry
            // with an audit record only, and nothing in the log said so.
            if (before.Count > 0)
            {
                foreach (var added in registry.List().Where(m => !before.Contains(m.Version)))
                {
                    Log.BundledModelRegistered(logger, added.Version, modelsDirectory, registry.CurrentVersion ?? "none");
                }
            }
        }

        registry.StartPeriodicVerification(TimeSpan.FromMinutes(15));
    }
}

/// <summary>Starts the per-device drift monitor's scoring timer (the serving pipeline feeds it every served window).</summary>
internal sealed class DriftLoop(Har.Drift.DeviceDriftMonitor monitor) : IHostedService
{
    private Har.Drift.DriftReport? _latest;

    /// <summary>Gets the most recent report of any device (what <c>GET /v1/drift</c> shows without <c>?device=</c>).</summary>
    public Har.Drift.DriftReport? Latest => Volatile.Read(ref _latest);

    public Task StartAsync(CancellationToken cancellationToken)
    {
        monitor.Scored += (_, report) => Volatile.Write(ref _latest, report);
        monitor.Start();
        return Task.CompletedTask;
    }

    public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;
}

