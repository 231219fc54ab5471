using System.Text.Json;

namespace Har.Audit;

/// <summary>
/// A model deployment (schema <c>deployment-record.schema.json</c>): the fields of the reference
/// deployment record — which model file (by SHA-256) went where, trained on what, validated how,
/// configured how, deployed and approved by whom.
/// </summary>
/// <param name="deploymentId">The deployment's identifier, e.g. <c>deploy-2026-01-15-001</c> (<c>deployment_id</c>).</param>
/// <param name="model">The model that was deployed (<c>model</c>).</param>
/// <param name="trainingData">The identity of the training data (<c>training_data</c>).</param>
/// <param name="validation">The validation metrics the release was gated on (<c>validation</c>).</param>
/// <param name="config">The inference configuration (<c>config</c>).</param>
/// <param name="deployer">Who deployed and who approved (<c>deployer</c>).</param>
/// <param name="environment">Where it was deployed (<c>environment</c>).</param>
public sealed class DeploymentRecord(string deploymentId, DeployedModel model, TrainingDataIdentity trainingData, ValidationMetrics validation, InferenceConfig config, Deployer deployer, DeploymentEnvironment environment) : AuditRecord
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
    public string DeploymentId { get; } = deploymentId;

    /// <summary>Gets the model that was deployed (<c>model</c>).</summary>
    public DeployedModel Model { get; } = model;

    /// <summary>Gets the identity of the training data (<c>training_data</c>).</summary>
    public TrainingDataIdentity TrainingData { get; } = trainingData;

    /// <summary>Gets the validation metrics the release was gated on (<c>validation</c>).</summary>
    public ValidationMetrics Validation { get; } = validation;

    /// <summary>Gets the inference configuration (<c>config</c>).</summary>
    public InferenceConfig Config { get; } = config;

    /// <summary>Gets who deployed and who approved (<c>deployer</c>).</summary>
    public Deployer Deployer { get; } = deployer;

    /// <summary>Gets where it was deployed (<c>environment</c>).</summary>
    public DeploymentEnvironment Environment { get; } = environment;

    internal override string IndexEventType => "deployment";

    internal override string IndexEntityType => "model";

    internal override string IndexEntityId => Model.Name;

    internal override string IndexActor => Deployer.User;

    internal static new DeploymentRecord Parse(ReadOnlySpan<byte> utf8Json) => (DeploymentRecord)Parse(AuditRecordKind.Deployment, utf8Json);

    internal static DeploymentRecord Read(JsonElement root)
    {
        var f = new JsonFields(root, "$", Fields);
        var config = f.Nested("config", ConfigFields, static c => new InferenceConfig(
            (int)c.Integer("window_size", 1, int.MaxValue),
            c.Number("sample_rate", double.Epsilon, 1e6),
            (int)c.Integer("n_classes", 2, 100_000),
            c.Number("confidence_threshold", 0, 1)));
        var deployer = f.Nested("deployer", DeployerFields, static d => new Deployer(d.String("user"), d.String("method"), d.String("approved_by")));
        var deploymentId = f.String("deployment_id");
        var environment = f.Nested("environment", EnvironmentFields, static e => new DeploymentEnvironment(
            e.String("target"),
            (int)e.Integer("replicas", 0, int.MaxValue),
            e.Nested("resources", ResourceFields, static r => new ResourceRequest(r.String("cpu"), r.String("memory")))));
        var model = f.Nested("model", ModelFields, static m => new DeployedModel(
            m.String("name"),
            m.String("version"),
            m.String("mlflow_run_id"),
            m.Sha256("sha256"),
            m.Integer("parameters", 0, 1L << 53)));
        var timestamp = f.Timestamp("timestamp");
        var training = f.Nested("training_data", TrainingFields, static t => new TrainingDataIdentity(
            t.String("dvc_version"),
            t.String("commit"),
            t.Integer("n_samples", 0, 1L << 53),
            t.Integer("n_users", 0, 1L << 53)));
        var validation = f.Nested("validation", ValidationFields, static v => new ValidationMetrics(
            v.Number("test_accuracy", 0, 1),
            v.Number("macro_f1", 0, 1),
            v.Bool("passed_smoke_test")));
        return new DeploymentRecord(deploymentId, model, training, validation, config, deployer, environment) { Timestamp = timestamp };
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
/// <param name="name">The model's name (<c>name</c>).</param>
/// <param name="version">The model's version, e.g. <c>1.2.0</c> (<c>version</c>).</param>
/// <param name="runId">The experiment-tracking run that produced it (<c>mlflow_run_id</c>).</param>
/// <param name="sha256">The SHA-256 of the model file, 64 lowercase hex digits (<c>sha256</c>; see <see cref="AuditHash.Sha256OfFileAsync"/>).</param>
/// <param name="parameters">The number of trainable parameters (<c>parameters</c>).</param>
public sealed class DeployedModel(string name, string version, string runId, string sha256, long parameters)
{
    /// <summary>Gets the model's name (<c>name</c>).</summary>
    public string Name { get; } = name;

    /// <summary>Gets the model's version, e.g. <c>1.2.0</c> (<c>version</c>).</summary>
    public string Version { get; } = version;

    /// <summary>Gets the experiment-tracking run that produced it (<c>mlflow_run_id</c>).</summary>
    public string RunId { get; } = runId;

    /// <summary>Gets the SHA-256 of the model file, 64 lowercase hex digits (<c>sha256</c>; see <see cref="AuditHash.Sha256OfFileAsync"/>).</summary>
    public string Sha256 { get; } = sha256;

    /// <summary>Gets the number of trainable parameters (<c>parameters</c>).</summary>
    public long Parameters { get; } = parameters;
}

/// <summary>The identity of the training data (<c>training_data</c> of a deployment record).</summary>
/// <param name="dataVersion">The data version, e.g. a DVC tag (<c>dvc_version</c>).</param>
/// <param name="commit">The source commit of the data and training code (<c>commit</c>).</param>
/// <param name="samples">The number of training samples (<c>n_samples</c>).</param>
/// <param name="users">The number of distinct subjects in the training data (<c>n_users</c>).</param>
public sealed class TrainingDataIdentity(string dataVersion, string commit, long samples, long users)
{
    /// <summary>Gets the data version, e.g. a DVC tag (<c>dvc_version</c>).</summary>
    public string DataVersion { get; } = dataVersion;

    /// <summary>Gets the source commit of the data and training code (<c>commit</c>).</summary>
    public string Commit { get; } = commit;

    /// <summary>Gets the number of training samples (<c>n_samples</c>).</summary>
    public long Samples { get; } = samples;

    /// <summary>Gets the number of distinct subjects in the training data (<c>n_users</c>).</summary>
    public long Users { get; } = users;
}

/// <summary>Validation metrics (<c>validation</c> of a deployment record).</summary>
/// <param name="testAccuracy">The held-out test accuracy in [0, 1] (<c>test_accuracy</c>).</param>
/// <param name="macroF1">The macro-averaged F1 in [0, 1] (<c>macro_f1</c>).</param>
/// <param name="passedSmokeTest">A value indicating whether the smoke test passed (<c>passed_smoke_test</c>).</param>
public sealed class ValidationMetrics(double testAccuracy, double macroF1, bool passedSmokeTest)
{
    /// <summary>Gets the held-out test accuracy in [0, 1] (<c>test_accuracy</c>).</summary>
    public double TestAccuracy { get; } = testAccuracy;

    /// <summary>Gets the macro-averaged F1 in [0, 1] (<c>macro_f1</c>).</summary>
    public double MacroF1 { get; } = macroF1;

    /// <summary>Gets a value indicating whether the smoke test passed (<c>passed_smoke_test</c>).</summary>
    public bool PassedSmokeTest { get; } = passedSmokeTest;
}

/// <summary>The inference configuration (<c>config</c> of a deployment record).</summary>
/// <param name="windowSize">The window length in samples (<c>window_size</c>).</param>
/// <param name="sampleRateHz">The sample rate in Hz (<c>sample_rate</c>).</param>
/// <param name="classes">The number of activity classes (<c>n_classes</c>).</param>
/// <param name="confidenceThreshold">The confidence below which a prediction is flagged uncertain, in [0, 1] (<c>confidence_threshold</c>).</param>
public sealed class InferenceConfig(int windowSize, double sampleRateHz, int classes, double confidenceThreshold)
{
    /// <summary>Gets the window length in samples (<c>window_size</c>).</summary>
    public int WindowSize { get; } = windowSize;

    /// <summary>Gets the sample rate in Hz (<c>sample_rate</c>).</summary>
    public double SampleRateHz { get; } = sampleRateHz;

    /// <summary>Gets the number of activity classes (<c>n_classes</c>).</summary>
    public int Classes { get; } = classes;

    /// <summary>Gets the confidence below which a prediction is flagged uncertain, in [0, 1] (<c>confidence_threshold</c>).</summary>
    public double ConfidenceThreshold { get; } = confidenceThreshold;
}

/// <summary>Who deployed and who approved (<c>deployer</c> of a deployment record).</summary>
/// <param name="user">The deploying user or service account (<c>user</c>).</param>
/// <param name="method">How it was deployed, e.g. <c>CI/CD pipeline</c> (<c>method</c>).</param>
/// <param name="approvedBy">Who approved the deployment (<c>approved_by</c>).</param>
public sealed class Deployer(string user, string method, string approvedBy)
{
    /// <summary>Gets the deploying user or service account (<c>user</c>).</summary>
    public string User { get; } = user;

    /// <summary>Gets how it was deployed, e.g. <c>CI/CD pipeline</c> (<c>method</c>).</summary>
    public string Method { get; } = method;

    /// <summary>Gets who approved the deployment (<c>approved_by</c>).</summary>
    public string ApprovedBy { get; } = approvedBy;
}

/// <summary>Where the model was deployed (<c>environment</c> of a deployment record).</summary>
/// <param name="target">The target cluster or host (<c>target</c>).</param>
/// <param name="replicas">The number of replicas (<c>replicas</c>).</param>
/// <param name="resources">The resources requested per replica (<c>resources</c>).</param>
public sealed class DeploymentEnvironment(string target, int replicas, ResourceRequest resources)
{
    /// <summary>Gets the target cluster or host (<c>target</c>).</summary>
    public string Target { get; } = target;

    /// <summary>Gets the number of replicas (<c>replicas</c>).</summary>
    public int Replicas { get; } = replicas;

    /// <summary>Gets the resources requested per replica (<c>resources</c>).</summary>
    public ResourceRequest Resources { get; } = resources;
}

/// <summary>Resources per replica (<c>environment.resources</c>), in Kubernetes quantity notation.</summary>
/// <param name="cpu">The CPU request, e.g. <c>500m</c> (<c>cpu</c>).</param>
/// <param name="memory">The memory request, e.g. <c>2Gi</c> (<c>memory</c>).</param>
public sealed class ResourceRequest(string cpu, string memory)
{
    /// <summary>Gets the CPU request, e.g. <c>500m</c> (<c>cpu</c>).</summary>
    public string Cpu { get; } = cpu;

    /// <summary>Gets the memory request, e.g. <c>2Gi</c> (<c>memory</c>).</summary>
    public string Memory { get; } = memory;
}
