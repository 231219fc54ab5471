using Har.Testing;
using YamlDotNet.RepresentationModel;

namespace Har.Fleet.Tests;

/// <summary>
/// The Kubernetes manifests of <c>deploy/k8s</c> parse as YAML and run the fleet as docs/fleet.md describes: shared state
/// in an external PostgreSQL (connection string from a Secret), no volume shared between pods, the signing key from a
/// Secret where the service reads it, readiness on <c>/ready</c>, and stream appends hashed on their path by ingress-nginx
/// on a backend of their own (ingress-nginx keeps <c>upstream-hash-by</c> per Service).
/// </summary>
public sealed class DeployManifestTests
{
    private static readonly string K8s = Path.Combine(TestPaths.RepoRoot, "deploy", "k8s");

    [Fact]
    public void Manifests_EveryFile_ParsesAndKustomizationListsEachResourceOnce()
    {
        var files = Directory.GetFiles(K8s, "*.yaml").Select(Path.GetFileName).Order().ToArray();
        Assert.NotEmpty(files);
        foreach (var file in files)
        {
            var documents = Load(file!);
            Assert.All(documents, d => Assert.False(string.IsNullOrEmpty(Text(d, "kind")), $"{file}: a document without a kind"));
        }

        var resources = Sequence(Load("kustomization.yaml").Single(), "resources").Select(r => ((YamlScalarNode)r).Value!).ToArray();
        Assert.Equal(resources.Length, resources.Distinct().Count());
        Assert.Equal(files.Where(f => f != "kustomization.yaml").Order(), resources.Order());
    }

    [Fact]
    public void Deployment_SharedStateInPostgres_NoSharedVolumeKeyFromSecretReadinessOnReady()
    {
        Assert.DoesNotContain(AllDocuments(), d => Text(d, "kind") == "PersistentVolumeClaim");
        Assert.DoesNotContain("ReadWriteMany", string.Join('\n', Directory.GetFiles(K8s, "*.yaml").Select(File.ReadAllText)), StringComparison.Ordinal);

        var deployment = AllDocuments().Single(d => Text(d, "kind") == "Deployment");
        var pod = Map(Map(Map(deployment, "spec"), "template"), "spec");
        var container = (YamlMappingNode)Sequence(pod, "containers").Single();
        var env = Sequence(container, "env").Cast<YamlMappingNode>().ToDictionary(e => Text(e, "name")!);
        var secretRef = Map(Map(env["ConnectionStrings__Har"], "valueFrom"), "secretKeyRef");
        Assert.False(string.IsNullOrEmpty(Text(secretRef, "name")));
        Assert.False(string.IsNullOrEmpty(Text(secretRef, "key")));
        Assert.DoesNotContain("Har__Service__AuditDirectory", env.Keys); // the log is in the database

        var volumes = Sequence(pod, "volumes").Cast<YamlMappingNode>().ToDictionary(v => Text(v, "name")!);
        Assert.All(volumes.Values, v => Assert.False(v.Children.ContainsKey("persistentVolumeClaim"), $"volume {Text(v, "name")} is a claim: state belongs in PostgreSQL"));

        // The signing key: a Secret mounted at {DataDirectory}/keys, where the service reads audit.key (and audit.vkey).
        var dataDirectory = File.ReadAllLines(Path.Combine(TestPaths.RepoRoot, "deploy", "Dockerfile"))
            .Select(l => l.Trim().TrimEnd('\\').Trim()).Single(l => l.StartsWith("Har__Service__DataDirectory=", StringComparison.Ordinal)).Split('=')[1];
        var mounts = Sequence(container, "volumeMounts").Cast<YamlMappingNode>().ToDictionary(m => Text(m, "mountPath")!);
        var keyMount = mounts[dataDirectory + "/keys"];
        var keyVolume = volumes[Text(keyMount, "name")!];
        var keyItems = Sequence(Map(keyVolume, "secret"), "items").Cast<YamlMappingNode>().Select(i => Text(i, "path")).Order().ToArray();
        Assert.Equal(["audit.key", "audit.vkey"], keyItems);
        Assert.Equal("true", Text(keyMount, "readOnly"));

        Assert.Equal("/ready", Text(Map(Map(container, "readinessProbe"), "httpGet"), "path"));
    }

    [Fact]
    public void Ingress_StreamAppends_HashedOnTheirPathOnABackendOfTheirOwn()
    {
        var ingresses = AllDocuments().Where(d => Text(d, "kind") == "Ingress").ToArray();
        var services = AllDocuments().Where(d => Text(d, "kind") == "Service").Select(s => Text(Map(s, "metadata"), "name")).ToHashSet();
        var byPath = new Dictionary<string, (string Service, string? HashBy)>(StringComparer.Ordinal);
        foreach (var ingress in ingresses)
        {
            var metadata = Map(ingress, "metadata");
            var hashBy = metadata.Children.TryGetValue(new YamlScalarNode("annotations"), out var a)
                && ((YamlMappingNode)a).Children.TryGetValue(new YamlScalarNode("nginx.ingress.kubernetes.io/upstream-hash-by"), out var h)
                ? ((YamlScalarNode)h).Value
                : null;
            foreach (YamlMappingNode rule in Sequence(Map(ingress, "spec"), "rules"))
            {
                foreach (YamlMappingNode path in Sequence(Map(rule, "http"), "paths"))
                {
                    var service = Text(Map(Map(path, "backend"), "service"), "name")!;
                    Assert.Contains(service, services);
                    byPath[Text(path, "path")!] = (service, hashBy);
                }
            }
        }

        var streams = byPath.Single(p => "/v1/streams/device-1/samples".StartsWith(p.Key, StringComparison.Ordinal) && p.Key != "/").Value;
        Assert.Equal("$uri", streams.HashBy);
        var rest = byPath["/"];
        Assert.Null(rest.HashBy);
        Assert.NotEqual(streams.Service, rest.Service);
    }

    private static List<YamlMappingNode> Load(string file)
    {
        var stream = new YamlStream();
        using (var reader = new StreamReader(Path.Combine(K8s, file)))
        {
            stream.Load(reader);
        }

        return [.. stream.Documents.Select(d => Assert.IsType<YamlMappingNode>(d.RootNode))];
    }

    private static IEnumerable<YamlMappingNode> AllDocuments() =>
        Directory.GetFiles(K8s, "*.yaml").Where(f => Path.GetFileName(f) != "kustomization.yaml").SelectMany(f => Load(Path.GetFileName(f)));

    private static YamlMappingNode Map(YamlMappingNode node, string key) =>
        node.Children.TryGetValue(new YamlScalarNode(key), out var child) ? Assert.IsType<YamlMappingNode>(child) : throw new KeyNotFoundException($"no '{key}' in {node.Start}");

    private static YamlSequenceNode Sequence(YamlMappingNode node, string key) =>
        node.Children.TryGetValue(new YamlScalarNode(key), out var child) ? Assert.IsType<YamlSequenceNode>(child) : throw new KeyNotFoundException($"no '{key}' in {node.Start}");

    private static string? Text(YamlMappingNode node, string key) =>
        node.Children.TryGetValue(new YamlScalarNode(key), out var child) && child is YamlScalarNode scalar ? scalar.Value : null;
}
