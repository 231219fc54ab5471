using System.Text.Json;

namespace Har.Audit;

/// <summary>
/// A model deployment (schema <c>deployment-record.schema.json</c>): the fields of the reference
/// deployment record — which model file (by SHA-256) went where, trained on what, validated how,
/// configured how, deployed and approved by whom.
/// </summary>
public sealed class DeploymentRecord : AuditRecord
{
    internal static readonly string[] Fields = ["config", "deployer", "deployment_id", "environment", "model", "timestamp", "training_data", "validation"];
    internal static readonly string[] ModelFields = ["mlflow_run_id", "name", "parameters", "sha256", "version"];
    internal static readonly string[] TrainingFields = ["commit", "dvc_version", "n_samples", "n_users"];
    internal static readonly string[] ValidationFields = ["macro_f1", "passed_smoke_test", "test_accuracy"];
    internal static readonly string[] ConfigFields = ["confidence_threshold", "n_classes", "sample_rate", "window_size"];
    internal static readonly string[] DeployerFields = ["approved_by", "method", "user"];
    internal static readonly string[] EnvironmentFields = ["replicas", "resources", "target"];
    internal static readonly string[] ResourceFields = ["cpu", "memory"];

    /// <inheritdoc/>
    public override AuditRecordKind Kind => AuditRecordKind.Deployment;

    /// <summary>Gets the deployment's identifier, e.g. <c>deploy-2026-01-15-001</c> (<c>deployment_id</c>).</summary>
    public required string DeploymentId { get; init; }

    /// <summary>Gets the model that was deployed (<c>model</c>).</summary>
    public required DeployedModel Model { get; init; }

    /// <summary>Gets the identity of the training data (<c>training_data</c>).</summary>
    public required TrainingDataIdentity TrainingData { get; init; }

    /// <summary>Gets the validation metrics the release was gated on (<c>validation</c>).</summary>
    public required ValidationMetrics Validation { get; init; }

    /// <summary>Gets the inference configuration (<c>config</c>).</summary>
    public required InferenceConfig Config { get; init; }

    /// <summary>Gets who deployed and who approved (<c>deployer</c>).</summary>
    public required Deployer Deployer { get; init; }

    /// <summary>Gets where it was deployed (<c>environment</c>).</summary>
    public required DeploymentEnvironment Environment { get; init; }

    internal override string IndexEventType => "deployment";

    internal override string IndexEntityType => "model";

    internal override string IndexEntityId => Model.Name;

    internal override string IndexActor => Deployer.User;

    /// <summary>Parses a deployment record strictly.</summary>
    /// <param name="utf8Json">The JSON (UTF-8).</param>
    /// <returns>The record.</returns>
    /// <exception cref="AuditRecordException">The JSON does not match the schema.</exception>
    public static new DeploymentRecord Parse(ReadOnlySpan<byte> utf8Json) => (DeploymentRecord)Parse(AuditRecordKind.Deployment, utf8Json);

    internal static DeploymentRecord Read(JsonElement root)
    {
        var f = new JsonFields(root, "$", Fields);
        return new DeploymentRecord
        {
            Config = f.Nested("config", ConfigFields, static c => new InferenceConfig
            {
                ConfidenceThreshold = c.Number("confidence_threshold", 0, 1),
                Classes = (int)c.Integer("n_classes", 2, 100_000),
                SampleRateHz = c.Number("sample_rate", double.Epsilon, 1e6),
                WindowSize = (int)c.Integer("window_size", 1, int.MaxValue),
            }),
            Deployer = f.Nested("deployer", DeployerFields, static d => new Deployer
            {
                ApprovedBy = d.String("approved_by"),
                Method = d.String("method"),
                User = d.String("user"),
            }),
            DeploymentId = f.String("deployment_id"),
            Environment = f.Nested("environment", EnvironmentFields, static e => new DeploymentEnvironment
            {
                Replicas = (int)e.Integer("replicas", 0, int.MaxValue),
                Resources = e.Nested("resources", ResourceFields, static r => new ResourceRequest { Cpu = r.String("cpu"), Memory = r.String("memory") }),
                Target = e.String("target"),
            }),
            Model = f.Nested("model", ModelFields, static m => new DeployedModel
            {
                RunId = m.String("mlflow_run_id"),
                Name = m.String("name"),
                Parameters = m.Integer("parameters", 0, 1L << 53),
                Sha256 = m.Sha256("sha256"),
                Version = m.String("version"),
            }),
            Timestamp = f.Timestamp("timestamp"),
            TrainingData = f.Nested("training_data", TrainingFields, static t => new TrainingDataIdentity
            {
                Commit = t.String("commit"),
                DataVersion = t.String("dvc_version"),
                Samples = t.Integer("n_samples", 0, 1L << 53),
                Users = t.Integer("n_users", 0, 1L << 53),
            }),
            Validation = f.Nested("validation", ValidationFields, static v => new ValidationMetrics
            {
                MacroF1 = v.Number("macro_f1", 0, 1),
                PassedSmokeTest = v.Bool("passed_smoke_test"),
                TestAccuracy = v.Number("test_accuracy", 0, 1),
            }),
        };
    }

    internal override void Validate()
    {
        var config = RecordChecks.Nested("$.config", Config);
        RecordChecks.Number("$.config.confidence_threshold", config.ConfidenceThreshold, 0, 1);
        RecordChecks.Integer("$.config.n_classes", config.Classes, 2, 100_000);
        RecordChecks.Number("$.config.sample_rate", config.SampleRateHz, double.Epsilon, 1e6);
        RecordChecks.Integer("$.config.window_size", config.WindowSize, 1, int.MaxValue);
        var deployer = RecordChecks.Nested("$.deployer", Deployer);
        RecordChecks.Text("$.deployer.approved_by", deployer.ApprovedBy);
        RecordChecks.Text("$.deployer.method", deployer.Method);
        RecordChecks.Text("$.deployer.user", deployer.User);
        RecordChecks.Text("$.deployment_id", DeploymentId);
        var environment = RecordChecks.Nested("$.environment", Environment);
        RecordChecks.Integer("$.environment.replicas", environment.Replicas, 0, int.MaxValue);
        var resources = RecordChecks.Nested("$.environment.resources", environment.Resources);
        RecordChecks.Text("$.environment.resources.cpu", resources.Cpu);
        RecordChecks.Text("$.environment.resources.memory", resources.Memory);
        RecordChecks.Text("$.environment.target", environment.Target);
        var model = RecordChecks.Nested("$.model", Model);
        RecordChecks.Text("$.model.mlflow_run_id", model.RunId);
        RecordChecks.Text("$.model.name", model.Name);
        RecordChecks.Integer("$.model.parameters", model.Parameters, 0, 1L << 53);
        RecordChecks.Sha256("$.model.sha256", model.Sha256);
        RecordChecks.Text("$.model.version", model.Version);
        var training = RecordChecks.Nested("$.training_data", TrainingData);
        RecordChecks.Text("$.training_data.commit", training.Commit);
        RecordChecks.Text("$.training_data.dvc_version", training.DataVersion);
        RecordChecks.Integer("$.training_data.n_samples", training.Samples, 0, 1L << 53);
        RecordChecks.Integer("$.training_data.n_users", training.Users, 0, 1L << 53);
        var validation = RecordChecks.Nested("$.validation", Validation);
        RecordChecks.Number("$.validation.macro_f1", validation.MacroF1, 0, 1);
        RecordChecks.Number("$.validation.test_accuracy", validation.TestAccuracy, 0, 1);
    }

    internal override void WriteCanonical(CanonicalJsonWriter w)
    {
        w.StartObject();
        w.Name("config");
        w.StartObject();
        w.Name("confidence_threshold"); w.Number(Config.ConfidenceThreshold);
        w.Name("n_classes"); w.Number(Config.Classes);
        w.Name("sample_rate"); w.Number(Config.SampleRateHz);
        w.Name("window_size"); w.Number(Config.WindowSize);
        w.EndObject();
        w.Name("deployer");
        w.StartObject();
        WriteText(w, "approved_by", Deployer.ApprovedBy);
        WriteText(w, "method", Deployer.Method);
        WriteText(w, "user", Deployer.User);
        w.EndObject();
        WriteText(w, "deployment_id", DeploymentId);
        w.Name("environment");
        w.StartObject();
        w.Name("replicas"); w.Number(Environment.Replicas);
        w.Name("resources");
        w.StartObject();
        WriteText(w, "cpu", Environment.Resources.Cpu);
        WriteText(w, "memory", Environment.Resources.Memory);
        w.EndObject();
        WriteText(w, "target", Environment.Target);
        w.EndObject();
        w.Name("model");
        w.StartObject();
        WriteText(w, "mlflow_run_id", Model.RunId);
        WriteText(w, "name", Model.Name);
        w.Name("parameters"); w.Number(Model.Parameters);
        WriteText(w, "sha256", Model.Sha256);
        WriteText(w, "version", Model.Version);
        w.EndObject();
        w.Name("timestamp");
        w.Timestamp(Timestamp);
        w.Name("training_data");
        w.StartObject();
        WriteText(w, "commit", TrainingData.Commit);
        WriteText(w, "dvc_version", TrainingData.DataVersion);
        w.Name("n_samples"); w.Number(TrainingData.Samples);
        w.Name("n_users"); w.Number(TrainingData.Users);
        w.EndObject();
        w.Name("validation");
        w.StartObject();
        w.Name("macro_f1"); w.Number(Validation.MacroF1);
        w.Name("passed_smoke_test"); w.Bool(Validation.PassedSmokeTest);
        w.Name("test_accuracy"); w.Number(Validation.TestAccuracy);
        w.EndObject();
        w.EndObject();
    }
}

/// <summary>The deployed model (<c>model</c> of a deployment record).</summary>
public sealed class DeployedModel
{
    /// <summary>Gets the model's name (<c>name</c>).</summary>
    public required string Name { get; init; }

    /// <summary>Gets the model's version, e.g. <c>1.2.0</c> (<c>version</c>).</summary>
    public required string Version { get; init; }

    /// <summary>Gets the experiment-tracking run that produced it (<c>mlflow_run_id</c>).</summary>
    public required string RunId { get; init; }

    /// <summary>Gets the SHA-256 of the model file, 64 lowercase hex digits (<c>sha256</c>; see <see cref="AuditHash.Sha256OfFileAsync"/>).</summary>
    public required string Sha256 { get; init; }

    /// <summary>Gets the number of trainable parameters (<c>parameters</c>).</summary>
    public required long Parameters { get; init; }
}

/// <summary>The identity of the training data (<c>training_data</c> of a deployment record).</summary>
public sealed class TrainingDataIdentity
{
    /// <summary>Gets the data version, e.g. a DVC tag (<c>dvc_version</c>).</summary>
    public required string DataVersion { get; init; }

    /// <summary>Gets the source commit of the data and training code (<c>commit</c>).</summary>
    public required string Commit { get; init; }

    /// <summary>Gets the number of training samples (<c>n_samples</c>).</summary>
    public required long Samples { get; init; }

    /// <summary>Gets the number of distinct subjects in the training data (<c>n_users</c>).</summary>
    public required long Users { get; init; }
}

/// <summary>Validation metrics (<c>validation</c> of a deployment record).</summary>
public sealed class ValidationMetrics
{
    /// <summary>Gets the held-out test accuracy in [0, 1] (<c>test_accuracy</c>).</summary>
    public required double TestAccuracy { get; init; }

    /// <summary>Gets the macro-averaged F1 in [0, 1] (<c>macro_f1</c>).</summary>
    public required double MacroF1 { get; init; }

    /// <summary>Gets a value indicating whether the smoke test passed (<c>passed_smoke_test</c>).</summary>
    public required bool PassedSmokeTest { get; init; }
}

/// <summary>The inference configuration (<c>config</c> of a deployment record).</summary>
public sealed class InferenceConfig
{
    /// <summary>Gets the window length in samples (<c>window_size</c>).</summary>
    public required int WindowSize { get; init; }

    /// <summary>Gets the sample rate in Hz (<c>sample_rate</c>).</summary>
    public required double SampleRateHz { get; init; }

    /// <summary>Gets the number of activity classes (<c>n_classes</c>).</summary>
    public required int Classes { get; init; }

    /// <summary>Gets the confidence below which a prediction is flagged uncertain, in [0, 1] (<c>confidence_threshold</c>).</summary>
    public required double ConfidenceThreshold { get; init; }
}

/// <summary>Who deployed and who approved (<c>deployer</c> of a deployment record).</summary>
public sealed class Deployer
{
    /// <summary>Gets the deploying user or service account (<c>user</c>).</summary>
    public required string User { get; init; }

    /// <summary>Gets how it was deployed, e.g. <c>CI/CD pipeline</c> (<c>method</c>).</summary>
    public required string Method { get; init; }

    /// <summary>Gets who approved the deployment (<c>approved_by</c>).</summary>
    public required string ApprovedBy { get; init; }
}

/// <summary>Where the model was deployed (<c>environment</c> of a deployment record).</summary>
public sealed class DeploymentEnvironment
{
    /// <summary>Gets the target cluster or host (<c>target</c>).</summary>
    public required string Target { get; init; }

    /// <summary>Gets the number of replicas (<c>replicas</c>).</summary>
    public required int Replicas { get; init; }

    /// <summary>Gets the resources requested per replica (<c>resources</c>).</summary>
    public required ResourceRequest Resources { get; init; }
}

/// <summary>Resources per replica (<c>environment.resources</c>), in Kubernetes quantity notation.</summary>
public sealed class ResourceRequest
{
    /// <summary>Gets the CPU request, e.g. <c>500m</c> (<c>cpu</c>).</summary>
    public required string Cpu { get; init; }

    /// <summary>Gets the memory request, e.g. <c>2Gi</c> (<c>memory</c>).</summary>
    public required string Memory { get; init; }
}
