using System.CommandLine;
using System.Globalization;
using System.Text;
using System.Text.Json;
using Har.Audit;

namespace Har.Cli.Commands;

/// <summary><c>har audit …</c>: append to, read, prove and verify a Har audit log.</summary>
internal static partial class AuditCommands
{
    /// <summary>The environment variable naming the default checkpoint signing key file.</summary>
    internal const string KeyEnvironmentVariable = "HAR_AUDIT_KEY";

    /// <summary>The environment variable holding the fleet's PostgreSQL connection string (the service's <c>ConnectionStrings:Har</c>).</summary>
    internal const string ConnectionEnvironmentVariable = "ConnectionStrings__Har";

    public static Command Create() => new("audit", "Append to, query, prove and verify a tamper-evident audit log.")
    {
        Append(),
        Show(),
        Query(),
        Verify(),
        Export(),
        Repair(),
        Checkpoint(),
        Prove(),
        Keygen(),
    };

    private static Option<DirectoryInfo> LogOption() => new("--log") { Description = "The audit log directory.", Required = true };

    private static Option<bool> JsonOption() => new("--json") { Description = "Print JSON." };

    private static Command Append()
    {
        var log = LogOption();
        var file = new Option<FileInfo>("--event") { Description = "A JSON file holding one record: an audit event, a deployment record or a rollback record.", Required = true };
        var kind = new Option<string?>("--kind") { Description = "The record type (event, deployment, rollback); default: told from the record's members." };
        var origin = new Option<string?>("--origin") { Description = "The log's origin when this append creates the log (default har.audit/<directory name>)." };
        var json = JsonOption();
        var command = new Command("append", "Append one record; returns after it is durable (fsynced).") { log, file, kind, origin, json };
        command.SetAction(async (parse, ct) =>
        {
            var bytes = InputFiles.ReadAllBytes(parse.GetValue(file)!.FullName, "--event: a JSON file holding one record", InputFiles.MaxDocumentBytes);

            // Editors on Windows save UTF-8 with a byte order mark, which JSON parsers may ignore (RFC 8259 §8.1); the
            // record is stored in canonical form (RFC 8785), so the mark changes nothing that is hashed.
            if (bytes.AsSpan().StartsWith("\uFEFF"u8))
            {
                bytes = bytes[3..];
            }

            var kindName = parse.GetValue(kind);
            var record = kindName is null ? AuditRecord.Parse(bytes) : AuditRecord.Parse(ParseKind(kindName), bytes);
            using var audit = AuditLog.Open(new AuditLogOptions { Directory = parse.GetValue(log)!.FullName, Origin = parse.GetValue(origin), EnableMetrics = false });
            var result = await audit.AppendAsync(record, ct).ConfigureAwait(false);
            if (parse.GetValue(json))
            {
                Console.Out.WriteLine(JsonSerializer.Serialize(new Dictionary<string, object> { ["index"] = result.Index, ["leaf_hash"] = Convert.ToHexStringLower(result.LeafHash.Span), ["tree_size"] = audit.Count }, CliJson.Indented));
            }
            else
            {
                Console.Out.WriteLine(string.Create(CultureInfo.InvariantCulture, $"appended {AuditRecordKindName(record.Kind)} as entry {result.Index} (leaf {Convert.ToHexStringLower(result.LeafHash.Span)}); the log holds {audit.Count} entries"));
            }

            return 0;
        });
        return command;
    }

    private static Command Show()
    {
        var log = LogOption();
        var index = new Option<long>("--index") { Description = "The entry index.", Required = true };
        var json = JsonOption();
        var command = new Command("show", "Print one entry: its record, index, chain link and leaf hash. Read-only: nothing in the log changes, and it may be open in the service.") { log, index, json };
        command.SetAction(parse =>
        {
            using var audit = OpenForReading(parse.GetValue(log)!);
            var entry = audit.Get(parse.GetValue(index));
            Console.Out.WriteLine(parse.GetValue(json) ? EntryJson(entry) : EntryText(entry));
            return 0;
        });
        return command;
    }

    private static Command Query()
    {
        var log = LogOption();
        var eventType = new Option<string?>("--event-type") { Description = "Match this event type (deployment, rollback, or an event's event_type)." };
        var entityType = new Option<string?>("--entity-type") { Description = "Match this entity type." };
        var entityId = new Option<string?>("--entity-id") { Description = "Match this entity id." };
        var actor = new Option<string?>("--actor") { Description = "Match this actor." };
        var kind = new Option<string?>("--kind") { Description = "Match this record type (event, deployment, rollback)." };
        var from = new Option<DateTimeOffset?>("--from") { Description = "Records at or after this time (RFC 3339)." };
        var to = new Option<DateTimeOffset?>("--to") { Description = "Records before this time (RFC 3339)." };
        var pageSize = new Option<int>("--page-size") { Description = "Entries per page (1-1000).", DefaultValueFactory = _ => 50 }
            .InRange(1, 1000, "a page holds at least one entry and at most 1,000");
        var pageToken = new Option<string?>("--page-token") { Description = "The next-page token a previous query printed." };
        var json = JsonOption();
        var command = new Command("query", "Find entries by event type, entity, actor, record type and time range, one stable page at a time. Read-only: nothing in the log changes, and it may be open in the service.")
        {
            log, eventType, entityType, entityId, actor, kind, from, to, pageSize, pageToken, json,
        };
        command.SetAction(parse =>
        {
            using var audit = OpenForReading(parse.GetValue(log)!);
            var kindName = parse.GetValue(kind);
            var page = audit.Query(new AuditQuery
            {
                EventType = parse.GetValue(eventType),
                EntityType = parse.GetValue(entityType),
                EntityId = parse.GetValue(entityId),
                Actor = parse.GetValue(actor),
                Kind = kindName is null ? null : ParseKind(kindName),
                From = parse.GetValue(from),
                To = parse.GetValue(to),
                PageSize = parse.GetValue(pageSize),
                PageToken = parse.GetValue(pageToken),
            });
            if (parse.GetValue(json))
            {
                var entries = page.Entries.Select(e => JsonDocument.Parse(EntryJson(e)).RootElement).ToList();
                Console.Out.WriteLine(JsonSerializer.Serialize(new Dictionary<string, object?> { ["entries"] = entries, ["next_page_token"] = page.NextPageToken }, CliJson.Indented));
            }
            else
            {
                foreach (var e in page.Entries)
                {
                    Console.Out.WriteLine(string.Create(CultureInfo.InvariantCulture, $"{e.Index,8}  {RecordText(e.Timestamp)}  {e.EventType,-22} {e.EntityType}/{e.EntityId}  by {e.Actor}"));
                }

                Console.Out.WriteLine(page.NextPageToken is null ? $"{page.Entries.Count} entries; end of log" : $"{page.Entries.Count} entries; next page: --page-token {page.NextPageToken}");
            }

            return 0;
        });
        return command;
    }

    private static Command Verify()
    {
        var log = new Option<DirectoryInfo?>("--log") { Description = "The audit log directory to verify (read-only; the log may be open elsewhere)." };
        var vkey = new Option<string?>("--vkey") { Description = "The trusted verifier key (name+keyid+base64) or a file holding it. Without it the key stored in the log directory is used, which proves less." };
        var bundle = new Option<FileInfo?>("--bundle") { Description = "Verify a proof bundle from `har audit prove --bundle` offline instead of a log (requires --vkey)." };
        var connection = ConnectionOption("The PostgreSQL connection string of the fleet's log to verify (read-only, one snapshot).");
        var json = JsonOption();
        var command = new Command("verify", "Verify a whole log (framing, CRC-32C, chain, schemas, stored tree, index, signed checkpoint, no quarantined entries), a log in PostgreSQL (--connection or $" + ConnectionEnvironmentVariable + "), an export (--log <export folder>) or a proof bundle; exit code 1 when verification fails. A log another process is writing is verified up to its consistent prefix, and the output says it is live.")
        {
            log, vkey, bundle, connection, json,
        };
        command.SetAction(parse =>
        {
            var key = ReadVerifierKey(parse.GetValue(vkey));
            if (parse.GetValue(bundle) is { } bundleFile)
            {
                if (key is null)
                {
                    throw new ArgumentException("Verifying a proof bundle needs the log's trusted verifier key: pass --vkey.");
                }

                var proof = AuditProofBundle.Parse(InputFiles.ReadAllText(bundleFile.FullName, "--bundle: a proof bundle from `har audit prove --bundle`", InputFiles.MaxDocumentBytes));
                var ok = proof.Verify(key, out var problem);
                Console.Out.WriteLine(ok
                    ? string.Create(CultureInfo.InvariantCulture, $"OK: entry {proof.LeafIndex} is in {proof.Checkpoint.Origin} at size {proof.Checkpoint.TreeSize}, signed by {key.Name}")
                    : $"FAILED: {problem}");
                return ok ? 0 : 1;
            }

            var dir = parse.GetValue(log);
            var database = dir is null ? ConnectionString(parse.GetValue(connection)) : null;
            if (dir is null && database is null)
            {
                throw new ArgumentException($"Pass --log <dir> to verify a log folder or an export, --connection <connection string> (or set {ConnectionEnvironmentVariable}) to verify a log in PostgreSQL, or --bundle <file> --vkey <key> to verify a proof bundle.");
            }

            var result = database is not null ? AuditLog.VerifyDatabase(database, key) : AuditLog.Verify(dir!.FullName, key);
            if (parse.GetValue(json))
            {
                Console.Out.WriteLine(JsonSerializer.Serialize(
                    new Dictionary<string, object?>
                    {
                        ["valid"] = result.IsValid,
                        ["problem"] = result.Problem.ToString(),
                        ["first_bad_index"] = result.FirstBadIndex,
                        ["entries_verified"] = result.EntriesVerified,
                        ["root_hash"] = result.IsValid ? Convert.ToHexStringLower(result.RootHash.Span) : null,
                        ["checkpoint_size"] = result.Checkpoint?.TreeSize,
                        ["verifier_key"] = result.VerifierKey,
                        ["verifier_key_pinned"] = result.VerifierKeyPinned,
                        ["message"] = result.Message,
                    },
                    CliJson.Indented));
            }
            else
            {
                // The library's message tells an API user how to pin the key (its verifierKey argument); here it is a flag.
                Console.Out.WriteLine(ApiPinningHint().Replace(result.ToString(), string.Empty));
                if (!result.VerifierKeyPinned && result.VerifierKey is not null)
                {
                    Console.Out.WriteLine("The verifier key was taken from the log itself: pin the trusted one with --vkey <key> to prove more.");
                }
            }

            return result.IsValid ? 0 : 1;
        });
        return command;
    }

    private static Command Export()
    {
        var connection = ConnectionOption("The PostgreSQL connection string of the log to export.");
        var log = new Option<DirectoryInfo?>("--log") { Description = "Export a log folder instead of a database." };
        var output = new Option<DirectoryInfo>("--out") { Description = "The new folder to write (must not exist or be empty).", Required = true };
        var command = new Command("export", "Write a log (from PostgreSQL: --connection or $" + ConnectionEnvironmentVariable + "; or a folder: --log) to a new folder as a byte-identical file log with its latest signed checkpoint, for offline verification with `har audit verify --log <folder> --vkey <key>`. A folder is read read-only (it may be open in the service).")
        {
            connection, log, output,
        };
        command.SetAction(parse =>
        {
            var dir = parse.GetValue(log);
            var database = dir is null ? ConnectionString(parse.GetValue(connection)) : null;
            using var source = dir is not null ? OpenForReading(dir)
                : AuditLog.Open(new AuditLogOptions { ConnectionString = database ?? throw new ArgumentException($"Pass --connection <connection string> (or set {ConnectionEnvironmentVariable}) or --log <dir>."), EnableMetrics = false });
            var target = parse.GetValue(output)!;
            if (File.Exists(target.FullName))
            {
                // The library's refusal names AuditLogOptions.Directory, an option a CLI user never set.
                throw new IOException($"--out '{target.FullName}' is a file; expected a new or empty folder for the exported log.");
            }

            var count = source.ExportTo(target.FullName);
            var checkpoint = source.LatestCheckpoint switch
            {
                null => " (no signed checkpoint yet)",
                { } c when c.TreeSize <= count => string.Create(CultureInfo.InvariantCulture, $" with the checkpoint at size {c.TreeSize}"),
                { } c => string.Create(CultureInfo.InvariantCulture, $" without its checkpoint (it signs {c.TreeSize} entries, more than the log holds readable)"),
            };
            Console.Out.WriteLine(string.Create(CultureInfo.InvariantCulture, $"exported {count} entries of {source.Origin} to {target.FullName}{checkpoint}"));
            return 0;
        });
        return command;
    }

    internal static Option<string?> ConnectionOption(string description) => new("--connection") { Description = description + $" Default: ${ConnectionEnvironmentVariable}." };

    /// <summary>The connection string from the option, else from the environment (as the service reads ConnectionStrings:Har).</summary>
    internal static string? ConnectionString(string? option) =>
        !string.IsNullOrWhiteSpace(option) ? option
        : Environment.GetEnvironmentVariable(ConnectionEnvironmentVariable) is { Length: > 0 } fromEnvironment ? fromEnvironment : null;

    private static Command Repair()
    {
        var log = LogOption();
        var actor = new Option<string>("--actor") { Description = "Who decides the repair (recorded in the log).", Required = true };
        var reason = new Option<string>("--reason") { Description = "Why, e.g. the incident number (recorded in the log).", Required = true };
        var json = JsonOption();
        var command = new Command(
            "repair",
            "Remove damaged acknowledged entries that stop the log from opening: they move to quarantine/ with a manifest, a checkpoint the shortened log no longer matches is archived, and an audit.log.repaired event records what was removed. `har audit verify` keeps failing (Quarantined) while the quarantine exists. Restore from a backup instead when you can.")
        {
            log, actor, reason, json,
        };
        command.SetAction(parse =>
        {
            var dir = parse.GetValue(log)!;
            if (!File.Exists(Path.Combine(dir.FullName, "entries.log")))
            {
                throw new DirectoryNotFoundException($"No audit log at '{dir.FullName}' (entries.log is missing).");
            }

            var report = AuditLog.Repair(new AuditLogOptions { Directory = dir.FullName, EnableMetrics = false }, parse.GetValue(actor)!, parse.GetValue(reason)!);
            if (parse.GetValue(json))
            {
                Console.Out.WriteLine(JsonSerializer.Serialize(
                    new Dictionary<string, object?>
                    {
                        ["repaired"] = report.RepairEventIndex is not null,
                        ["entries"] = report.Entries,
                        ["removed_from_offset"] = report.TruncatedAtOffset,
                        ["removed_bytes"] = report.TruncatedBytes,
                        ["problem"] = report.Reason,
                        ["quarantine_file"] = report.QuarantinePath,
                        ["repair_event_index"] = report.RepairEventIndex,
                    },
                    CliJson.Indented));
            }
            else
            {
                Console.Out.WriteLine(report.RepairEventIndex is null ? $"nothing to repair: {report}" : $"REPAIRED: {report}");
            }

            return 0;
        });
        return command;
    }

    private static Command Checkpoint()
    {
        var log = LogOption();
        var keyFile = new Option<FileInfo?>("--key") { Description = $"The signing key file from `har audit keygen` (default: the file named by ${KeyEnvironmentVariable})." };
        var command = new Command("checkpoint", "Sign a checkpoint (origin, size, root) of the log with Ed25519 and write it beside the log; prints the signed note.") { log, keyFile };
        command.SetAction(parse =>
        {
            var path = parse.GetValue(keyFile)?.FullName ?? Environment.GetEnvironmentVariable(KeyEnvironmentVariable);
            if (string.IsNullOrEmpty(path))
            {
                throw new ArgumentException($"No signing key: pass --key <file> or set {KeyEnvironmentVariable}. Create one with `har audit keygen --name <origin> --out <file>` and keep it outside the log directory (whoever can rewrite the log must not hold the key).");
            }

            _ = InputFiles.ReadAllBytes(path, "a signing key file from `har audit keygen`", InputFiles.MaxKeyBytes); // a folder, or a device that never ends, refused first
            using var key = AuditSigningKey.Load(path);
            using var audit = OpenExisting(parse.GetValue(log)!);
            var checkpoint = audit.CreateCheckpoint(key);
            Console.Out.Write(checkpoint.NoteText);
            return 0;
        });
        return command;
    }

    private static Command Prove()
    {
        var log = LogOption();
        var index = new Option<long?>("--index") { Description = "Inclusion proof for this entry." };
        var from = new Option<long?>("--from") { Description = "Consistency proof from this older tree size." };
        var size = new Option<long?>("--size") { Description = "The tree size to prove against (default: the whole log)." };
        var bundle = new Option<FileInfo?>("--bundle") { Description = "With --index: write a self-contained proof bundle (entry, path, signed checkpoint) that `har audit verify --bundle` checks offline." };
        var json = JsonOption();
        var command = new Command("prove", "Print an inclusion proof (--index I [--size N]) or a consistency proof (--from M [--size N]), or export a proof bundle. Read-only: nothing in the log changes, and it may be open in the service.") { log, index, from, size, bundle, json };
        command.SetAction(parse =>
        {
            var i = parse.GetValue(index);
            var m = parse.GetValue(from);
            if (i is null == m is null)
            {
                throw new ArgumentException("Pass exactly one of --index I (inclusion proof) or --from M (consistency proof).");
            }

            using var audit = OpenForReading(parse.GetValue(log)!);
            if (parse.GetValue(bundle) is { } bundleFile)
            {
                if (i is null)
                {
                    throw new ArgumentException("--bundle exports an inclusion proof: pass --index I.");
                }

                if (audit.LatestCheckpoint is null)
                {
                    throw new InvalidDataException("The log has no signed checkpoint yet; run `har audit checkpoint` first.");
                }

                File.WriteAllText(bundleFile.FullName, audit.ExportProof(i.Value).ToJson());
                Console.Out.WriteLine(string.Create(CultureInfo.InvariantCulture, $"wrote the proof of entry {i} against checkpoint size {audit.LatestCheckpoint.TreeSize} to {bundleFile.FullName}"));
                return 0;
            }

            if (i is { } leaf)
            {
                var proof = audit.GetInclusionProof(leaf, parse.GetValue(size));
                Console.Out.WriteLine(parse.GetValue(json) ? proof.ToJson() : string.Create(CultureInfo.InvariantCulture, $"entry {proof.LeafIndex} in tree size {proof.TreeSize}: root {Convert.ToHexStringLower(proof.RootHash.Span)}, {proof.Path.Count} path hashes; verifies: {proof.Verify()}"));
            }
            else
            {
                var proof = audit.GetConsistencyProof(m!.Value, parse.GetValue(size));
                Console.Out.WriteLine(parse.GetValue(json) ? proof.ToJson() : string.Create(CultureInfo.InvariantCulture, $"size {proof.FromSize} -> {proof.ToSize}: {proof.Path.Count} proof hashes; verifies: {proof.Verify()}"));
            }

            return 0;
        });
        return command;
    }

    private static Command Keygen()
    {
        var name = new Option<string>("--name") { Description = "The key name, conventionally the log origin (e.g. audit.example.com/har).", Required = true };
        var output = new Option<FileInfo>("--out") { Description = "The private key file to create (mode 0600; never overwritten).", Required = true };
        var command = new Command("keygen", "Create an Ed25519 checkpoint signing key; prints the verifier key to give to auditors.") { name, output };
        command.SetAction(parse =>
        {
            using var key = AuditSigningKey.Generate(parse.GetValue(name)!);
            key.Save(parse.GetValue(output)!.FullName);
            Console.Out.WriteLine(key.VerifierKey);
            return 0;
        });
        return command;
    }

    /// <summary>Opens an existing log to change it (<c>checkpoint</c>): it must not be open in another process.</summary>
    private static AuditLog OpenExisting(DirectoryInfo dir)
    {
        RequireLog(dir);
        return AuditLog.Open(new AuditLogOptions { Directory = dir.FullName, EnableMetrics = false });
    }

    /// <summary>Opens an existing log read-only for a command that only reads it (see <see cref="OpenReadOnly"/>).</summary>
    private static AuditLog OpenForReading(DirectoryInfo dir)
    {
        RequireLog(dir);
        return OpenReadOnly(dir.FullName);
    }

    private static void RequireLog(DirectoryInfo dir)
    {
        if (!File.Exists(Path.Combine(dir.FullName, "entries.log")))
        {
            throw new DirectoryNotFoundException($"No audit log at '{dir.FullName}' (entries.log is missing); `har audit append` creates one.");
        }
    }

    /// <summary>
    /// Opens a log for a command that only reads it: read-only, so nothing in the folder changes (a torn tail stays where
    /// it is) and a log the service holds open can be read. When the view stops short of the end of a log no process is
    /// writing, one warning line on stderr says where and what to run; a live log's unfinished last group is normal.
    /// </summary>
    internal static AuditLog OpenReadOnly(string directory)
    {
        var log = AuditLog.OpenReadOnly(directory);
        if (log.ReadOnlyStopReason is { } stop && !AuditLog.IsLive(directory))
        {
            Console.Error.WriteLine($"har: warning: {stop}. Nothing was changed; this command read the entries before it. Run `har audit verify --log {log.Directory}` to check the log, and `har audit repair` if an acknowledged entry is damaged (a torn tail is dropped, with a copy in torn/, when the log is next opened for writing).");
        }

        return log;
    }

    internal static AuditVerifierKey? ReadVerifierKey(string? value)
    {
        if (string.IsNullOrWhiteSpace(value))
        {
            return null;
        }

        // A value naming a file or a folder is a path; anything else is the key itself.
        return AuditVerifierKey.Parse(File.Exists(value) || Directory.Exists(value) ? InputFiles.ReadAllText(value, "a verifier key file (name+keyid+base64)", InputFiles.MaxKeyBytes) : value);
    }

    private static AuditRecordKind ParseKind(string name) => name.ToUpperInvariant() switch
    {
        "EVENT" => AuditRecordKind.Event,
        "DEPLOYMENT" => AuditRecordKind.Deployment,
        "ROLLBACK" => AuditRecordKind.Rollback,
        _ => throw new ArgumentException($"Unknown record type '{name}'; expected event, deployment or rollback."),
    };

    private static string AuditRecordKindName(AuditRecordKind kind) => kind.ToString().ToLowerInvariant();

    private static string RecordText(DateTimeOffset t) => t.UtcDateTime.ToString("yyyy-MM-dd'T'HH:mm:ss'Z'", CultureInfo.InvariantCulture);

    private static string EntryJson(AuditEntry e)
    {
        using var stored = JsonDocument.Parse(e.CanonicalJson);
        return JsonSerializer.Serialize(
            new Dictionary<string, object>
            {
                ["index"] = e.Index,
                ["kind"] = AuditRecordKindName(e.Kind),
                ["leaf_hash"] = Convert.ToHexStringLower(e.LeafHash.Span),
                ["prev"] = Convert.ToHexStringLower(e.PreviousHash.Span),
                ["record"] = stored.RootElement.GetProperty("record").Clone(),
            },
            CliJson.Indented);
    }

    private static string EntryText(AuditEntry e)
    {
        var sb = new StringBuilder();
        sb.Append(CultureInfo.InvariantCulture, $"entry {e.Index} ({AuditRecordKindName(e.Kind)}) {RecordText(e.Timestamp)}\n");
        sb.Append(CultureInfo.InvariantCulture, $"  {e.EventType} on {e.EntityType}/{e.EntityId} by {e.Actor}\n");
        sb.Append(CultureInfo.InvariantCulture, $"  leaf {Convert.ToHexStringLower(e.LeafHash.Span)}\n");
        sb.Append(CultureInfo.InvariantCulture, $"  prev {Convert.ToHexStringLower(e.PreviousHash.Span)}\n");
        sb.Append(e.Record.ToString());
        return sb.ToString();
    }

    [System.Text.RegularExpressions.GeneratedRegex(@" \(key taken from the (log directory|database), which proves less: [^)]*to prove more\)")]
    private static partial System.Text.RegularExpressions.Regex ApiPinningHint();
}
