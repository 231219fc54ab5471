using System.ComponentModel.DataAnnotations;

namespace Har.Service;

/// <summary>Settings of the HTTP host (configuration section <c>Har:Service</c>).</summary>
public sealed class ServiceOptions
{
    public const string Section = "Har:Service";

    /// <summary>Folder holding the model registry, the audit log and generated keys. A relative path is resolved against the working directory (under <c>dotnet run --project samples/Har.Service</c>, the project's folder).</summary>
    [Required]
    public string DataDirectory { get; set; } = "har-data";

    /// <summary>Folder of the audit log. Default: <c>{DataDirectory}/audit</c>. One writer per log: give each replica its own.</summary>
    public string? AuditDirectory { get; set; }

    /// <summary>A JSON file of API keys (<c>[{"name","key","roles"}]</c>), e.g. a mounted secret. Used when <see cref="ApiKeys"/> is empty.</summary>
    public string? ApiKeysFile { get; set; }

    /// <summary>
    /// Reference profile for drift scoring (JSON from <c>har drift profile</c>). Default: <c>hapt-train-profile.json</c> in
    /// <c>Har:ModelsDirectory</c> (the <c>models</c> folder next to the executable, which the build fills with the bundled
    /// <c>.onnx</c> files only), when it is there (none is bundled: a profile keeps a sample of its data; the README says how
    /// to build it and point this setting at it). A relative path is resolved against the working directory. Without a
    /// profile drift monitoring is off.
    /// </summary>
    public string? DriftProfilePath { get; set; }

    /// <summary>Frames in the drift monitor's current window (one minute at 50 Hz by default).</summary>
    [Range(500, 1_000_000)]
    public int DriftWindowFrames { get; set; } = 3000;

    /// <summary>
    /// Most devices the drift monitor keeps (<c>DriftMonitorOptions.MaxDevices</c>), about 100 KB each at the default window.
    /// A device beyond it is not monitored while every monitor is held by a device that streamed within the last minute
    /// (or alarms); <c>GET /v1/drift?device=</c> says so and <c>har_drift_unmonitored_observations_total</c> counts its
    /// predictions. Keep it at least the number of devices that stream at once.
    /// </summary>
    [Range(1, 1_000_000)]
    public int DriftMaxDevices { get; set; } = 1000;

    /// <summary>
    /// File of the drift monitor's per-device state (every device's history, alarm and latest report), restored at start
    /// and replaced atomically after a scoring tick that changed an alarm and at least every 5 minutes (<c>DriftMonitorOptions.StateSaveInterval</c>), so a restart or a crash keeps the raised alarms and each device's
    /// own earlier minutes (<c>DriftMonitorOptions.StatePath</c>). Default: <c>drift-state.bin</c> beside
    /// <c>rollout.json</c> (<c>{DataDirectory}/registry/.rollout</c>). In a fleet (<c>ConnectionStrings:Har</c>) the
    /// default is no file: each device's state lives in the fleet's PostgreSQL (<c>har_fleet.drift_devices</c>,
    /// <c>FleetDriftStateStore</c>), so it follows a device the proxy moves to another replica (a replica stops, a redeploy
    /// renames the pods, the hash ring changes); setting this path in a fleet keeps the state in this replica's own file
    /// instead, and a device that moves starts fresh on its new replica.
    /// </summary>
    public string? DriftStatePath { get; set; }

    /// <summary>How often the drift monitor scores the devices that collected half a window of new frames since their last scoring.</summary>
    public TimeSpan DriftScoreInterval { get; set; } = TimeSpan.FromSeconds(30);

    /// <summary>
    /// How often the service gives the free pages of glibc's malloc arenas back to the operating system
    /// (<c>malloc_trim(0)</c>; docs/hardening.md, point 54); zero turns it off. Linux only.
    /// </summary>
    [Range(typeof(TimeSpan), "00:00:00", "1.00:00:00")]
    public TimeSpan NativeMemoryTrimInterval { get; set; } = TimeSpan.FromMinutes(1);

    /// <summary>Analysis interval of canary and blue-green rollouts.</summary>
    public TimeSpan RolloutAnalysisInterval { get; set; } = TimeSpan.FromMinutes(1);

    /// <summary>
    /// Most windows accepted in one predict request, and most windows one stream append may complete (an append
    /// of more than this many strides of frames is refused with 413, before anything is appended). With
    /// <see cref="MaxConcurrentPredictionsPerClient"/> it bounds what one client can put in the model's
    /// batching queue (1,024 windows): 2 × 64 = 128 by default.
    /// </summary>
    [Range(1, 1024)]
    public int MaxWindowsPerRequest { get; set; } = 64;

    /// <summary>
    /// Prediction requests (<c>/v1/predict</c>, stream appends) one client (API key, or anonymous client: an IPv4
    /// address or IPv6 prefix, <see cref="AnonymousIPv6PrefixLength"/>) may have in progress; further ones wait in a per-client queue of
    /// <see cref="PredictionQueuePerClient"/>, beyond which they get 429 with Retry-After.
    /// </summary>
    [Range(1, 1024)]
    public int MaxConcurrentPredictionsPerClient { get; set; } = 2;

    /// <summary>Prediction requests of one client waiting for one of its <see cref="MaxConcurrentPredictionsPerClient"/> slots (oldest first).</summary>
    [Range(0, 10_000)]
    public int PredictionQueuePerClient { get; set; } = 16;

    /// <summary>
    /// Windows per second one anonymous client (an IPv4 address or IPv6 prefix, <see cref="AnonymousIPv6PrefixLength"/>) may have scored, charged per request before anything
    /// is scored or appended (429 with Retry-After beyond): the batching queue is first come, first served, so this
    /// caps the share of the model an anonymous client can take. A device at 50 Hz with a stride of 100 frames needs 0.5.
    /// </summary>
    [Range(1, 1_000_000)]
    public int AnonymousWindowsPerSecond { get; set; } = 200;

    /// <summary>Windows per second one API key may have scored (see <see cref="AnonymousWindowsPerSecond"/>).</summary>
    [Range(1, 1_000_000)]
    public int KeyedWindowsPerSecond { get; set; } = 2000;

    /// <summary>Streams buffered at once. A new stream beyond it evicts an idle one or is refused with 503 and Retry-After.</summary>
    [Range(1, 10_000_000)]
    public int MaxStreams { get; set; } = 10_000;

    /// <summary>
    /// Streams one anonymous client (an IPv4 address or IPv6 prefix, <see cref="AnonymousIPv6PrefixLength"/>) may hold at once: a client holds a stream while it sent it samples
    /// within <see cref="StreamIdleTimeout"/>. A new stream beyond it is 429 with Retry-After; the client's other streams
    /// are served. It keeps one address from filling the stream table (<see cref="MaxStreams"/>) that every new device
    /// needs: at the default, a tenth of it. Behind a reverse proxy every anonymous device has the proxy's address and
    /// shares its window budget (<see cref="AnonymousWindowsPerSecond"/>, 200 windows/s: about 400 devices at a window
    /// every 2 s), which runs out before this quota does; give such devices API keys (docs/fleet.md). 0: no limit.
    /// </summary>
    [Range(0, 10_000_000)]
    public int MaxStreamsPerAnonymousClient { get; set; } = 1000;

    /// <summary>
    /// Streams one API key may hold at once (see <see cref="MaxStreamsPerAnonymousClient"/>). 0, the default: no limit
    /// beyond <see cref="MaxStreams"/>, since one backend key often carries every device of an app; set it to give each
    /// key a share of the table when several backends share the service.
    /// </summary>
    [Range(0, 10_000_000)]
    public int MaxStreamsPerKey { get; set; }

    /// <summary>
    /// How long one ONNX Runtime run of a model (a batch of windows, or its warm-up at load) may take before it is
    /// stopped (<c>HarModelOptions.RunTimeout</c>, the name messages use): the windows of a stopped run fail, and a
    /// candidate whose warm-up is stopped ends its rollout Failed on the champion, instead of a graph that never
    /// finishes holding the rollout controller, its commands and the shutdown.
    /// </summary>
    [Range(typeof(TimeSpan), "00:00:01", "01:00:00")]
    public TimeSpan ModelRunTimeout { get; set; } = TimeSpan.FromSeconds(30);

    /// <summary>A stream that received nothing for this long is evicted (its buffered frames are dropped).</summary>
    [Range(typeof(TimeSpan), "00:00:01", "1.00:00:00")]
    public TimeSpan StreamIdleTimeout { get; set; } = TimeSpan.FromMinutes(5);

    /// <summary>
    /// Frames before each window the serving pipeline keeps (<c>ServingOptions.ContextFrames</c>): set it to the context a
    /// candidate's card reads (<c>har.context_frames</c>) to roll it out beside a champion that reads less. Unset: the
    /// current version's. Whole windows sent to <c>/v1/predict</c> then carry this many frames of context first.
    /// </summary>
    [Range(0, 1 << 20)]
    public int? ContextFrames { get; set; }

    /// <summary>API keys and their roles. When empty, an operator+auditor key is generated on first start into <c>{DataDirectory}/api-keys.json</c>.</summary>
    public List<ApiKeyEntry> ApiKeys { get; set; } = [];

    /// <summary>Whether prediction endpoints require an API key (role <c>predictor</c>, <c>operator</c> or <c>auditor</c>).</summary>
    public bool PredictRequiresKey { get; set; }

    /// <summary>Origins allowed by CORS. Empty: no cross-origin access. <c>*</c> is refused (keys are credentials).</summary>
    public List<string> CorsOrigins { get; set; } = [];

    /// <summary>Requests per second per client (API key, or IPv4 address or IPv6 prefix when anonymous: <see cref="AnonymousIPv6PrefixLength"/>) before 429.</summary>
    [Range(1, 1_000_000)]
    public int RateLimitPerSecond { get; set; } = 2000;

    /// <summary>
    /// The prefix length by which anonymous IPv6 clients are grouped into one client, for every limit kept per anonymous
    /// client (request rate, window budget, prediction concurrency, streams, connections per address, the refusal
    /// summary): one customer line routinely gets a /64, 2^64 addresses, and per address each was a fresh client with a
    /// fresh budget. IPv4 clients are per address; an IPv4-mapped IPv6 address counts as its IPv4 address. 128: per
    /// address.
    /// </summary>
    /// <value>The default value is 64.</value>
    [Range(1, 128)]
    public int AnonymousIPv6PrefixLength { get; set; } = Security.ClientAddress.DefaultIPv6PrefixLength;

    /// <summary>
    /// Most anonymous clients (IPv4 addresses, IPv6 prefixes of <see cref="AnonymousIPv6PrefixLength"/>) each per-client
    /// structure keeps state for: the rate limiters' partitions (request rate, prediction concurrency, window budget:
    /// one table for the three) and the stream quota's clients, which hold at most this many streams in all (not
    /// clients × <see cref="MaxStreamsPerAnonymousClient"/>). A new client (or stream) finding a table full takes the
    /// place of one idle long enough (the rate limiters: about 17 s unseen; the stream quota: streams idle for
    /// <see cref="StreamIdleTimeout"/>); when none is, it shares one overflow partition with every other such client (one
    /// budget, one stream quota), counted in <c>har_service_client_overflow_total{table}</c>. Keys are not counted (there
    /// are as many as configured). About 1 KB per tracked client for the rate limiters (their three partitions and the
    /// table's entry; 100,000: about 100 MB at most, reached only by that many clients within about 17 s), plus a stream
    /// quota entry per client and stream held (about 200 bytes each with its id). ASP.NET Core's limiters walk their
    /// partitions every 100 ms: with the table full, about 30 % of a core on a loaded 2-core machine (100,000).
    /// </summary>
    /// <value>The default value is 100,000.</value>
    [Range(1, 10_000_000)]
    public int MaxTrackedClients { get; set; } = 100_000;

    /// <summary>Burst size of the per-client token bucket.</summary>
    [Range(1, 10_000_000)]
    public int RateLimitBurst { get; set; } = 4000;

    /// <summary>How often refused requests (401, 403, 404, 405, 429) are summarized in one audit entry; they are never audited one by one.</summary>
    [Range(typeof(TimeSpan), "00:00:01", "1.00:00:00")]
    public TimeSpan RefusalSummaryInterval { get; set; } = TimeSpan.FromMinutes(1);

    /// <summary>How often feedback requests are audited: one <c>http.feedback</c> entry per labeller key and interval (requests by status, labels, streams, labelled windows), and one at shutdown.</summary>
    [Range(typeof(TimeSpan), "00:00:01", "1.00:00:00")]
    public TimeSpan FeedbackAuditInterval { get; set; } = TimeSpan.FromMinutes(1);

    /// <summary>The share of the champion's streams whose windows a canary candidate also scores as a shadow, in percent (0 turns it off): the analysis sees the candidate on every window, at a second inference per window during the canary.</summary>
    [Range(0.0, 100.0)]
    public double CanaryShadowPercent { get; set; } = 100;

    /// <summary>Whether a person must approve before a canary is promoted and before the blue-green switch (<c>POST /v1/rollouts/current/approve</c>).</summary>
    public bool RequireApproval { get; set; }

    /// <summary>How many distinct operators (API key names) must approve each approval step; one key cannot approve twice.</summary>
    [Range(1, 10)]
    public int RequiredApprovals { get; set; } = 1;

    /// <summary>HTTP webhooks called at rollout phases (Flagger's types: confirm-rollout, pre-rollout, rollout, confirm-promotion, post-rollout, event); each call and its answer is audited.</summary>
    public List<Infrastructure.WebhookOptions> Webhooks { get; set; } = [];

    /// <summary>Backups of the registry, rollout state and audit log (<c>POST /v1/backups</c>, <c>har backup</c>).</summary>
    public BackupSettings Backup { get; set; } = new();

    /// <summary>Lowest test accuracy (0–1) the candidate's model card must record for <c>POST /v1/rollouts</c> to start a rollout; unset: no gate.</summary>
    [Range(0.0, 1.0)]
    public double? MinCandidateAccuracy { get; set; }

    /// <summary>Lowest test macro-F1 (0–1) the candidate's model card must record to start a rollout; unset: no gate.</summary>
    [Range(0.0, 1.0)]
    public double? MinCandidateMacroF1 { get; set; }

    /// <summary>Whether the operator who started a rollout may also approve it (when approvals are required). Off by default: four eyes.</summary>
    public bool StarterMayApprove { get; set; }

    /// <summary>
    /// Largest model upload (<c>POST /v1/models</c>, operators only) in bytes; larger uploads get 413. Separate from
    /// <see cref="MaxRequestBodyBytes"/> so that a model of some megabytes does not raise the limit every prediction body,
    /// anonymous ones included, is held to.
    /// </summary>
    [Range(1024, 2L * 1024 * 1024 * 1024 - 1)]
    public long MaxModelUploadBytes { get; set; } = 512L * 1024 * 1024;

    /// <summary>Largest accepted request body in bytes (model uploads: <see cref="MaxModelUploadBytes"/>); larger bodies get 413.</summary>
    [Range(1024, 256L * 1024 * 1024)]
    public long MaxRequestBodyBytes { get; set; } = 4 * 1024 * 1024;

    /// <summary>
    /// Slowest accepted request body, in bytes per second after a 5-second grace: a client sending more slowly is cut
    /// off (Kestrel's minimum data rate; its default, 240 B/s, let a client hold a request open for 17 minutes with a
    /// 300 KB body dribbled just above it, and 18 such connections filled an address's share of prediction requests).
    /// A device's stream append (a few KB) completes within the grace at any rate; 0 turns the limit off.
    /// </summary>
    [Range(0, 100L * 1024 * 1024)]
    public double MinRequestBodyBytesPerSecond { get; set; } = 4096;

    /// <summary>
    /// Longest time, in seconds, a prediction request's body (<c>POST /v1/predict</c>, stream appends) may take to
    /// arrive in full; a slower one gets 408 and its connection is closed. The body is read before the request takes
    /// one of its client's prediction slots (<see cref="MaxConcurrentPredictionsPerClient"/>), so a slow body holds no
    /// slot: 18 bodies dribbled at 5 KB/s held an address's slots (and, with a predictor key, every address's) for as
    /// long as the minimum data rate allowed, 17 minutes for a 4 MiB body. A largest body (4 MiB) within 60 s needs
    /// about 70 KB/s. 0 turns the deadline off.
    /// </summary>
    [Range(0, 3600)]
    public double PredictionBodySeconds { get; set; } = 60;

    /// <summary>
    /// Bytes of buffer one client's (an API key's, an address's) prediction request bodies may hold at once, read before
    /// their slots (<see cref="PredictionBodySeconds"/>) and charged as their bytes arrive (a buffer is at most twice what
    /// arrived); a body that would take the client past it gets 429 (before it is read when its declared length does not
    /// fit). At least <see cref="MaxRequestBodyBytes"/>.
    /// </summary>
    [Range(1024, 16L * 1024 * 1024 * 1024)]
    public long MaxArrivingBodyBytesPerClient { get; set; } = 16 * 1024 * 1024;

    /// <summary>
    /// Bytes of buffer the prediction request bodies of all clients may hold at once (memory), charged as their bytes
    /// arrive; a body that would take the service past it gets 503 with Retry-After (before it is read when its declared
    /// length does not fit). In use: <c>har_service_arriving_body_bytes</c>. At least <see cref="MaxArrivingBodyBytesPerClient"/>.
    /// </summary>
    [Range(1024, 64L * 1024 * 1024 * 1024)]
    public long MaxArrivingBodyBytes { get; set; } = 512L * 1024 * 1024;

    /// <summary>
    /// Connections open at once; one beyond it is closed as soon as it is accepted (counted in
    /// <c>har_service_connections_refused_total{reason="capacity"}</c>). The service also keeps it 1,024 below the
    /// process's open-file limit (half the limit when it is below 2,048), so that connections cannot take the files the service needs (an idle-connection flood
    /// past that limit stopped the process). A device that streams holds one connection: keep it above
    /// <see cref="MaxStreams"/> when devices connect directly.
    /// </summary>
    [Range(1, 10_000_000)]
    public int MaxConnections { get; set; } = 20_000;

    /// <summary>
    /// Connections one remote address (an IPv6 prefix of <see cref="AnonymousIPv6PrefixLength"/> counts as one) may hold at once; one beyond it is closed as soon as it is accepted (counted in
    /// <c>har_service_connections_refused_total{reason="address"}</c>), so one client cannot take every connection.
    /// Behind a reverse proxy every connection has the proxy's address: set it above the proxy's connections to the
    /// service (nginx: its upstream keepalive plus the requests it sends at once), or 0 for no limit.
    /// </summary>
    [Range(0, 10_000_000)]
    public int MaxConnectionsPerAddress { get; set; } = 1000;

    /// <summary>
    /// The reverse proxies (addresses such as <c>10.0.0.7</c>, or networks such as <c>10.0.0.0/8</c>) whose
    /// <c>X-Forwarded-For</c> header names the client: a request whose connection comes from one of them is treated as
    /// coming from the last address that header lists, for every per-client limit (request rate, prediction concurrency,
    /// window budget, stream quota), the refusal summary and the audit log's <c>remote</c>. Behind nginx or an ingress
    /// every anonymous client otherwise has the proxy's address and shares one budget. A header from any other address is
    /// ignored, so clients cannot choose their own address. Connections are still counted per connecting address
    /// (<see cref="MaxConnectionsPerAddress"/>: the proxy's). Default: none.
    /// </summary>
    public List<string> TrustedProxies { get; set; } = [];
}

/// <summary>One API key.</summary>
public sealed class ApiKeyEntry
{
    /// <summary>Who holds the key (written to the audit log as the actor).</summary>
    [Required]
    public string Name { get; set; } = "";

    /// <summary>The secret. At least 24 characters.</summary>
    [Required]
    [MinLength(24)]
    public string Key { get; set; } = "";

    /// <summary>Roles: <c>operator</c> (models, rollouts), <c>auditor</c> (audit reads), <c>predictor</c> (predictions when keyed), <c>labeller</c> (feedback labels: ground truth for the rollout's accuracy gate).</summary>
    public List<string> Roles { get; set; } = [];
}

/// <summary>Backup settings (configuration section <c>Har:Service:Backup</c>).</summary>
public sealed class BackupSettings
{
    /// <summary>Folder of the archives (<c>har-backup-*.tar.gz</c>). Default: <c>{DataDirectory}/backups</c>; put it on another volume in production.</summary>
    public string? Directory { get; set; }

    /// <summary>How many archives to keep; older ones are deleted after each backup.</summary>
    [Range(1, 10_000)]
    public int Keep { get; set; } = 7;

    /// <summary>Whether <c>POST /v1/rollouts</c> takes a backup before it starts the rollout (and refuses to start when the backup fails).</summary>
    public bool BeforeRollout { get; set; }

    /// <summary>
    /// Whether backups are taken on a schedule (a CronJob or timer calling <c>POST /v1/backups</c> or <c>har backup create</c>):
    /// exported as <c>har_backup_scheduled</c> 1, which arms the staleness alerts (warning when the newest archive is older
    /// than 26 h, critical older than 50 h or when there is none). Default: <see langword="false"/>.
    /// </summary>
    public bool Scheduled { get; set; }

    /// <summary>Whether archives include the audit checkpoint signing key (<c>keys/audit.key</c>), so a restored service signs on with the same key. The archive then holds a secret.</summary>
    public bool IncludeSigningKey { get; set; } = true;
}
