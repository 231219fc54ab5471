using System.CommandLine;
using System.Globalization;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json;
using Har.Audit;
using Har.Deployment;

namespace Har.Cli.Commands;

/// <summary><c>har backup …</c>: take (from a running service, or a stopped service's data folder), verify, restore and prune backups.</summary>
internal static class BackupCommands
{
    public static Command Create() => WrapErrors(new("backup", "Back up the registry, rollout state and audit log in one verified archive, and restore it into an empty folder or an empty PostgreSQL database.")
    {
        CreateCommand(),
        VerifyCommand(),
        RestoreCommand(),
        ListCommand(),
        PruneCommand(),
    });

    /// <summary>A refused archive is exit code 1 with the reason on one line; usage mistakes stay exit code 2.</summary>
    private static Command WrapErrors(Command command)
    {
        foreach (var sub in command.Subcommands)
        {
            if (sub.Action is System.CommandLine.Invocation.AsynchronousCommandLineAction inner)
            {
                sub.SetAction(async (parse, ct) =>
                {
                    try
                    {
                        return await inner.InvokeAsync(parse, ct).ConfigureAwait(false);
                    }
                    catch (DeploymentBackupException ex)
                    {
                        await Console.Error.WriteLineAsync($"har: {ex.Message}").ConfigureAwait(false);
                        return 1;
                    }
                    catch (HttpRequestException ex)
                    {
                        await Console.Error.WriteLineAsync($"har: {ex.Message}").ConfigureAwait(false);
                        return 2;
                    }
                });
            }
        }

        return command;
    }

    private static Option<string?> VerifierKeyOption() => new("--vkey") { Description = "The trusted verifier key of the audit log's checkpoints (name+keyid+base64, or a file holding it, e.g. the service's keys/audit.vkey). Without it the key in the archive is used: that proves the archive is intact, not who made it." };

    private static Command CreateCommand()
    {
        var service = new Option<string?>("--service") { Description = "A running Har.Service (e.g. http://127.0.0.1:5080): it takes the backup while it serves, and the archive is downloaded." };
        var apiKey = new Option<string?>("--api-key") { Description = "An operator API key of the service (default: $HAR_API_KEY)." };
        var data = new Option<DirectoryInfo?>("--data") { Description = "A stopped service's data folder (registry/, audit/, keys/): back it up directly." };
        var output = new Option<DirectoryInfo>("--out") { Description = "The folder the archive is written to.", Required = true }
            .NotAFile("the folder the archive is written to (created when missing)");
        var reason = new Option<string>("--reason") { Description = "Why (recorded in the audit log and the manifest).", DefaultValueFactory = _ => "har backup create" };
        var keep = new Option<int?>("--keep") { Description = "Keep this many archives in --out (1 or more); older ones are deleted." }
            .InRange(1, int.MaxValue, "the archive just taken is always kept");
        var noKey = new Option<bool>("--without-signing-key") { Description = "With --data: leave the checkpoint signing key out of the archive." };
        var command = new Command("create", "Take a backup: from a running service (--service, consistent while it serves and appends) or from a stopped service's data folder (--data).") { service, apiKey, data, output, reason, keep, noKey };
        command.ExactlyOne(service, data, "a backup is taken from a running service or from a stopped service's data folder, not both", "Pass --service <url> (a running service) or --data <folder> (a stopped service's data folder).");
        command.Excludes(noKey, service, "a running service decides whether its archive holds the key (Har:Service:Backup:IncludeSigningKey)");
        command.SetAction(async (parse, ct) =>
        {
            var outDir = parse.GetValue(output)!.FullName;
            if (parse.GetValue(service) is { } serviceUrl)
            {
                var url = Uri.TryCreate(serviceUrl, UriKind.Absolute, out var parsed) && parsed.Scheme is "http" or "https"
                    ? parsed
                    : throw new ArgumentException($"--service '{serviceUrl}' is not an http(s) URL; expected e.g. http://127.0.0.1:5080.");
                var key = parse.GetValue(apiKey) ?? Environment.GetEnvironmentVariable("HAR_API_KEY")
                    ?? throw new ArgumentException("Pass --api-key <operator key> (or set HAR_API_KEY): backups need the operator role.");
                CreatePrivateFolder(outDir);
                using var http = new HttpClient { BaseAddress = url, Timeout = TimeSpan.FromMinutes(30) };
                http.DefaultRequestHeaders.Add("X-Api-Key", key);
                // The archive comes back in the answer to the POST: behind a load balancer a second request (GET
                // /v1/backups/{id}) could reach another replica, which does not hold it. A service of an earlier release
                // answers with the summary only; the archive is then fetched from it.
                using var request = new HttpRequestMessage(HttpMethod.Post, "/v1/backups") { Content = JsonContent.Create(new { reason = parse.GetValue(reason) }) };
                request.Headers.Accept.ParseAdd("application/gzip");
                request.Headers.Accept.ParseAdd("application/json; q=0.5");
                using var created = await http.SendAsync(request, HttpCompletionOption.ResponseHeadersRead, ct).ConfigureAwait(false);
                if (!created.IsSuccessStatusCode)
                {
                    throw new HttpRequestException($"The service refused the backup ({(int)created.StatusCode}): {await created.Content.ReadAsStringAsync(ct).ConfigureAwait(false)}");
                }

                var withArchive = created.Content.Headers.ContentType?.MediaType == "application/gzip";
                var summary = withArchive
                    ? Encoding.UTF8.GetString(Convert.FromBase64String(created.Headers.TryGetValues("Har-Backup-Summary", out var values) ? values.Single() : throw new HttpRequestException("The service sent an archive without its Har-Backup-Summary header.")))
                    : await created.Content.ReadAsStringAsync(ct).ConfigureAwait(false);
                using var json = JsonDocument.Parse(summary);
                var id = json.RootElement.GetProperty("backup_id").GetString()!;
                var sha = json.RootElement.GetProperty("sha256").GetString()!;
                if (!DeploymentBackup.IsArchiveName(id + ".tar.gz"))
                {
                    // The id names the file written in --out: a service (or anyone between it and a plain http:// URL)
                    // must not choose another folder ('/etc/x', '../x').
                    throw new DeploymentBackupException($"Backup refused: the service named the backup '{ModelVersionName.Printable(id)}'; expected a name such as har-backup-20261207T101500123Z-1a2b3c4d. Nothing was written.");
                }

                var target = Path.Combine(outDir, id + ".tar.gz");
                var temp = target + ".part";
                File.Delete(temp); // a download interrupted before
                if (withArchive)
                {
                    await using var file = DeploymentBackup.CreatePrivateFile(temp);
                    await created.Content.CopyToAsync(file, ct).ConfigureAwait(false);
                }
                else
                {
                    using var download = await http.GetAsync($"/v1/backups/{id}", HttpCompletionOption.ResponseHeadersRead, ct).ConfigureAwait(false);
                    if (!download.IsSuccessStatusCode)
                    {
                        throw new HttpRequestException($"The service took backup {id} but answered {(int)download.StatusCode} to GET /v1/backups/{id}: behind a load balancer, point --service at the replica that took it.");
                    }

                    await using var file = DeploymentBackup.CreatePrivateFile(temp);
                    await download.Content.CopyToAsync(file, ct).ConfigureAwait(false);
                }

                var actual = Convert.ToHexStringLower(System.Security.Cryptography.SHA256.HashData(File.ReadAllBytes(temp)));
                if (actual != sha)
                {
                    File.Delete(temp);
                    throw new DeploymentBackupException($"Backup refused: the downloaded archive has SHA-256 {actual}, but the service wrote {sha}; download it again.");
                }

                File.Move(temp, target);
                var pruned = parse.GetValue(keep) is { } k ? DeploymentBackup.Prune(outDir, k) : [];
                Console.Out.WriteLine(string.Create(CultureInfo.InvariantCulture, $"backup {id}: {Count(json.RootElement.GetProperty("audit_entries").GetInt64(), "audit entry", "audit entries")}, {Count(json.RootElement.GetProperty("files").GetInt32(), "file", "files")}, {Count(json.RootElement.TryGetProperty("labelled_windows", out var lw) ? lw.GetInt32() : 0, "labelled window", "labelled windows")}, current {json.RootElement.GetProperty("current_version")}; written to {target} (sha256 {sha}){(pruned.Count > 0 ? $"; pruned {string.Join(", ", pruned)}" : string.Empty)}"));
                return 0;
            }

            var folder = parse.GetValue(data)?.FullName ?? throw new ArgumentException("Pass --service <url> (a running service) or --data <folder> (a stopped service's data folder).");
            var keyPath = Path.Combine(folder, "keys", "audit.key");
            if (!File.Exists(keyPath))
            {
                throw new FileNotFoundException($"No signing key at {keyPath}; the archive's audit log is signed with the service's key (keys/audit.key).");
            }

            CreatePrivateFolder(outDir);

            await using var log = AuditLog.Open(new AuditLogOptions { Directory = Path.Combine(folder, "audit"), EnableMetrics = false });
            var registry = new ModelRegistry(Path.Combine(folder, "registry"), log);
            using var signing = AuditSigningKey.Load(keyPath);
            var result = await DeploymentBackup.CreateAsync(registry, log, null, outDir, new DeploymentBackupOptions
            {
                SigningKey = signing,
                SigningKeyFile = parse.GetValue(noKey) ? null : keyPath,
                Actor = Environment.UserName,
                Reason = parse.GetValue(reason)!,
                Keep = parse.GetValue(keep),
            }, ct).ConfigureAwait(false);
            Console.Out.WriteLine(string.Create(CultureInfo.InvariantCulture, $"backup {result.BackupId}: {Count(result.AuditEntries, "audit entry", "audit entries")}, {Count(result.Files, "file", "files")}, {Count(result.LabelledWindows, "labelled window", "labelled windows")}, current {result.CurrentVersion ?? "none"}; written to {result.ArchivePath} (sha256 {result.Sha256}){(result.Pruned.Count > 0 ? $"; pruned {string.Join(", ", result.Pruned)}" : string.Empty)}"));
            return 0;
        });
        return command;
    }

    private static Command VerifyCommand()
    {
        var archive = new Argument<FileInfo>("archive") { Description = "The har-backup-*.tar.gz file." };
        var vkey = VerifierKeyOption();
        var command = new Command("verify", "Verify an archive without restoring it (files against the manifest, audit log against its signed checkpoint, backup record, every version against the audit log); exit code 1 when refused.") { archive, vkey };
        command.SetAction(async (parse, ct) =>
        {
            var result = DeploymentBackup.Verify(parse.GetValue(archive)!.FullName, AuditCommands.ReadVerifierKey(parse.GetValue(vkey)));
            await Console.Out.WriteLineAsync(Describe("verified", result)).ConfigureAwait(false);
            return 0;
        });
        return command;
    }

    private static Command RestoreCommand()
    {
        var archive = new Argument<FileInfo>("archive") { Description = "The har-backup-*.tar.gz file." };
        var to = new Option<DirectoryInfo?>("--to") { Description = "An empty (or new) folder: the restored data folder (registry/, audit/, keys/); start the service with Har:Service:DataDirectory pointing at it." };
        var connection = new Option<string?>("--connection") { Description = "Restore into a fleet's PostgreSQL database instead (a new, empty database: the audit log, registered versions, current pointer and rollout state); the replicas' ConnectionStrings:Har." };
        var vkey = VerifierKeyOption();
        var actor = new Option<string>("--actor") { Description = "Who restores (recorded in the restored audit log).", DefaultValueFactory = _ => Environment.UserName };
        var command = new Command("restore", "Restore an archive into an empty folder (--to) or an empty PostgreSQL database (--connection); everything is verified before anything is written, and a refused archive leaves nothing behind (exit code 1).") { archive, to, connection, vkey, actor };
        command.SetAction(async (parse, ct) =>
        {
            var path = parse.GetValue(archive)!.FullName;
            var key = AuditCommands.ReadVerifierKey(parse.GetValue(vkey));
            var (folder, database) = (parse.GetValue(to), parse.GetValue(connection));
            if ((folder is null) == (database is null))
            {
                throw new ArgumentException("Pass exactly one of --to <empty folder> (a single service's data folder) and --connection <connection string> (an empty database for a fleet).");
            }

            if (database is not null)
            {
                var restored = DeploymentBackup.RestoreToDatabase(path, database, key, parse.GetValue(actor)!);
                await Console.Out.WriteLineAsync(Describe($"restored into {DatabaseName(database)} and verified", restored)).ConfigureAwait(false);
                if (restored.HasSigningKey)
                {
                    await Console.Out.WriteLineAsync("note: the checkpoint signing key (keys/audit.key in the archive) is not stored in the database; extract it (`tar -xzf <archive> keys/audit.key`) into each replica's data folder as keys/audit.key before the replicas start, or they sign with a key of their own.").ConfigureAwait(false);
                }

                return 0;
            }

            var result = DeploymentBackup.Restore(path, folder!.FullName, key, parse.GetValue(actor)!);
            await Console.Out.WriteLineAsync(Describe($"restored into {folder.FullName} and verified", result)).ConfigureAwait(false);
            return 0;
        });
        return command;
    }

    /// <summary>
    /// Creates <c>--out</c> as a folder only its owner can enter (0700 on Unix), as the service creates its backup folder:
    /// an archive holds every model and, by default, the signing key. A folder that exists is left as it is.
    /// </summary>
    private static void CreatePrivateFolder(string path)
    {
        if (OperatingSystem.IsWindows() || Directory.Exists(path))
        {
            Directory.CreateDirectory(path);
            return;
        }

        Directory.CreateDirectory(path, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
    }

    /// <summary>"1 file", "2 files": a count with the word it counts.</summary>
    private static string Count(long n, string one, string many) => string.Create(CultureInfo.InvariantCulture, $"{n} {(n == 1 ? one : many)}");

    /// <summary><c>postgresql://host/database</c> for messages: never the password.</summary>
    private static string DatabaseName(string connectionString)
    {
        var builder = new Npgsql.NpgsqlConnectionStringBuilder(connectionString);
        return $"postgresql://{builder.Host}/{builder.Database ?? builder.Username ?? "postgres"}";
    }

    /// <summary>The archives' folder of list and prune: one that does not exist is a mistyped path, not a folder without backups.</summary>
    private static string ExistingBackupFolder(DirectoryInfo dir) =>
        dir.Exists
            ? dir.FullName
            : throw new DirectoryNotFoundException($"No backup folder at '{dir.FullName}'; 'har backup create --out <dir>' creates one.");

    private static Command ListCommand()
    {
        var dir = new Option<DirectoryInfo>("--dir") { Description = "The folder of the archives.", Required = true };
        var command = new Command("list", "List the archives in a folder, newest first, and how old the newest is (the service's har_backup_last_success_timestamp_seconds).") { dir };
        command.SetAction(async (parse, ct) =>
        {
            var archives = DeploymentBackup.List(ExistingBackupFolder(parse.GetValue(dir)!));
            foreach (var f in archives)
            {
                await Console.Out.WriteLineAsync(string.Create(CultureInfo.InvariantCulture, $"{f.Name}  {f.Length} bytes")).ConfigureAwait(false);
            }

            if (archives.Count > 0 && DeploymentBackup.TryGetCreatedAt(archives[0].Name, out var newest))
            {
                var age = DateTimeOffset.UtcNow - newest;
                await Console.Out.WriteLineAsync(age < TimeSpan.FromMinutes(-5)
                    ? string.Create(CultureInfo.InvariantCulture, $"newest backup named {newest:yyyy-MM-dd'T'HH:mm:ss'Z'}, {-age.TotalHours:0.#} h ahead of this clock: a name no backup of now can have (a copied or renamed file, or a clock set wrong); check it with har backup verify")
                    : string.Create(CultureInfo.InvariantCulture, $"newest backup taken {newest:yyyy-MM-dd'T'HH:mm:ss'Z'}, {Math.Max(0, age.TotalHours):0.#} h ago (from its name; har backup verify checks an archive)")).ConfigureAwait(false);
            }
            else
            {
                await Console.Out.WriteLineAsync("no backups").ConfigureAwait(false);
            }

            return 0;
        });
        return command;
    }

    private static Command PruneCommand()
    {
        var dir = new Option<DirectoryInfo>("--dir") { Description = "The folder of the archives.", Required = true };
        var keep = new Option<int>("--keep") { Description = "How many of the newest archives to keep (1 or more).", Required = true }
            .InRange(1, int.MaxValue, "prune keeps at least the newest archive");
        var command = new Command("prune", "Keep the newest --keep archives of a folder that verify and delete the older ones; an archive that does not verify is neither kept nor deleted, and is named (exit code 1).") { dir, keep };
        command.SetAction(async (parse, ct) =>
        {
            var unverified = new List<string>();
            var deleted = DeploymentBackup.Prune(ExistingBackupFolder(parse.GetValue(dir)!), parse.GetValue(keep), unverified);
            await Console.Out.WriteLineAsync(deleted.Count == 0 ? "nothing to prune" : "deleted " + string.Join(", ", deleted)).ConfigureAwait(false);
            foreach (var bad in unverified)
            {
                await Console.Error.WriteLineAsync($"har: does not verify (not counted as kept, not deleted): {bad}").ConfigureAwait(false);
            }

            return unverified.Count == 0 ? 0 : 1;
        });
        return command;
    }

    private static string Describe(string what, DeploymentBackupResult r) => string.Create(
        CultureInfo.InvariantCulture,
        $"{r.BackupId} {what}: {Count(r.Files, "file matches", "files match")} the manifest; {Count(r.AuditEntries, "audit entry verifies", "audit entries verify")} against the signed checkpoint ({(r.KeyPinned ? "pinned key" : "key from the archive: pass --vkey to pin it")} {r.VerifierKey}); versions [{string.Join(", ", r.Versions)}] verify against the audit log; current {r.CurrentVersion ?? "none"}; {(r.Format != DeploymentBackup.FormatV1 ? Count(r.LabelledWindows, "labelled window", "labelled windows") : $"no labelled windows ({r.Format}, from before archives kept them: the labels of the folder it was taken from are in its registry/.rollout/feedback.jsonl; har backup create --data <that folder> takes an archive with them)")}{(r.HasSigningKey ? "; the archive holds the signing key" : "; no signing key in the archive")}; taken {r.CreatedAt:u}");
}
