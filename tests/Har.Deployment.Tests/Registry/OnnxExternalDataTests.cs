using Har.Deployment.Tests.Support;
using Har.Inference;
using Har.Testing;
using static Har.Testing.OnnxModelEditor;

namespace Har.Deployment.Tests.Registry;

/// <summary>
/// The registry stores and hashes <c>model.onnx</c> alone; a tensor whose data lies in another file (ONNX external
/// data) is outside that hash. <see cref="OnnxExternalData"/> finds such tensors wherever ONNX can hold them.
/// </summary>
public sealed class OnnxExternalDataTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("har-external-data-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    public static TheoryData<string> BundledModels() => new(Directory.GetFiles(TestPaths.Models, "*.onnx").Select(Path.GetFileName)!);

    [Theory]
    [MemberData(nameof(BundledModels))]
    public void Find_BundledModels_NothingExternal(string file)
    {
        Assert.Null(OnnxExternalData.Find(Path.Combine(TestPaths.Models, file)));
    }

    [Fact]
    public void Find_InitializerMovedToAFileBeside_NamesTheTensorAndTheFile_AndOnnxRuntimeLoadsIt()
    {
        var model = WithExternalInitializer(File.ReadAllBytes(TestRegistry.ChampionFile), "weights.bin", out var data, out var tensor);
        var path = Path.Combine(_dir, "model.onnx");
        File.WriteAllBytes(path, model);
        File.WriteAllBytes(Path.Combine(_dir, "weights.bin"), data);

        // A working model as a user's exporter writes it: ONNX Runtime reads the data from the file beside it.
        Assert.Equal("1.0.0", ModelCard.Load(path).ModelVersion);
        var found = OnnxExternalData.Find(path);
        Assert.Equal($"tensor '{tensor}' (graph › initializer) keeps its data in 'weights.bin'", found);
    }

    [Fact]
    public void Find_InitializerInsideAnIfBranch_NamesThePathToIt()
    {
        var tensor = Message((8, "w"), (14, 1), (13, Message((1, "location"), (2, "../../registry-secret"))));
        var branch = Message((2, "then"), (5, tensor));
        var node = Message((1, "cond"), (3, "If_7"), (4, "If"), (5, Message((1, "then_branch"), (20, 5), (6, branch))));
        var model = Message((1, 8L), (7, Message((1, node), (2, "main"))));

        Assert.Equal(
            "tensor 'w' (graph › node 'If_7' › attribute 'then_branch' › subgraph › initializer) keeps its data in '../../registry-secret'",
            OnnxExternalData.Find(model));
    }

    [Fact]
    public void Find_EveryPlaceATensorCanSit_Found()
    {
        var external = Message((8, "t"), (13, Message((1, "location"), (2, "x.bin"))));
        byte[][] models =
        [
            Message((7, Message((15, Message((1, external)))))), // sparse initializer values
            Message((7, Message((15, Message((2, external)))))), // sparse initializer indices
            Message((7, Message((1, Message((5, Message((1, "value"), (5, external)))))))), // Constant's tensor attribute
            Message((7, Message((1, Message((5, Message((1, "tensors"), (10, external)))))))), // a list of tensors
            Message((7, Message((1, Message((5, Message((1, "graphs"), (11, Message((5, external)))))))))), // a list of graphs
            Message((7, Message((1, Message((5, Message((1, "sparse"), (22, Message((1, external)))))))))),
            Message((25, Message((1, "f"), (7, Message((5, Message((1, "value"), (5, external)))))))), // a function's node
            Message((25, Message((1, "f"), (11, Message((1, "alpha"), (5, external)))))), // a function's attribute default
            Message((20, Message((2, Message((5, external)))))), // a training graph
        ];

        Assert.All(models, model => Assert.Contains("keeps its data in 'x.bin'", OnnxExternalData.Find(model), StringComparison.Ordinal));
    }

    [Fact]
    public void Find_DataLocationExternalWithoutALocation_StillFound()
    {
        var model = Message((7, Message((5, Message((8, "w"), (14, 1))))));
        Assert.Equal("tensor 'w' (graph › initializer) keeps its data in another file", OnnxExternalData.Find(model));
    }

    [Fact]
    public void Find_OtherFieldsOfEveryWireTypeAndGroups_SkippedBeforeTheTensor()
    {
        // field 30 as a group holding a varint and a fixed32, field 31 fixed64, field 32 fixed32, then the graph.
        byte[] unknown = [0xF3, 0x01, 0x08, 0x07, 0x15, 1, 2, 3, 4, 0xF4, 0x01, 0xF9, 0x01, 1, 2, 3, 4, 5, 6, 7, 8, 0x85, 0x02, 9, 9, 9, 9];
        var graph = Message((7, Message((5, Message((8, "w"), (14, 1))))));
        Assert.NotNull(OnnxExternalData.Find([.. unknown, .. graph]));
        Assert.Null(OnnxExternalData.Find([.. unknown, .. Message((7, Message((5, Message((8, "w"), (9, new byte[] { 1, 2, 3, 4 }))))))]));
    }

    [Fact]
    public void Find_TruncatedMessage_InvalidDataNamingTheOffset()
    {
        var model = Message((7, Message((5, Message((8, "w"), (14, 1))))));
        var ex = Assert.Throws<InvalidDataException>(() => OnnxExternalData.Find(model.AsSpan(0, model.Length - 3)));
        Assert.Contains("not a well-formed ONNX protobuf", ex.Message, StringComparison.Ordinal);
        Assert.Contains("at byte", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Find_SubgraphsNestedDeeperThanTheLimit_RefusedWithoutExhaustingTheStack()
    {
        // 200,000 If nodes each holding the next graph: 600,000 nested messages (about 5 MB), far past any stack a
        // recursive walk without a limit would have.
        var model = NestedIfs(200_000);
        var ex = Assert.Throws<InvalidDataException>(() => OnnxExternalData.Find(model));
        Assert.Contains($"more than {OnnxExternalData.MaxDepth} levels", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Find_SubgraphsNestedWithinTheLimit_Walked()
    {
        var inner = Message((5, Message((8, "w"), (14, 1))));
        for (var i = 0; i < 30; i++)
        {
            inner = Message((1, Message((3, $"If_{i}"), (5, Message((1, "else_branch"), (6, inner))))));
        }

        Assert.StartsWith("tensor 'w' (graph › node 'If_29' › attribute 'else_branch' › subgraph › node 'If_28'", OnnxExternalData.Find(Message((7, inner))), StringComparison.Ordinal);
    }

    /// <summary>graph { node { attribute { name: "then_branch", g: graph { node { … } } } } }, built inside out in linear time.</summary>
    private static byte[] NestedIfs(int levels)
    {
        var name = Message((1, "then_branch"));
        var parts = new List<byte[]> { Message((5, Message((8, "w"), (9, new byte[] { 1 })))) };
        long inner = parts[0].Length;
        for (var i = 0; i < levels; i++)
        {
            byte[] graphTag = [.. Tag(6, inner)];
            inner += graphTag.Length + name.Length;
            byte[] attributeTag = [.. Tag(5, inner)];
            inner += attributeTag.Length;
            byte[] nodeTag = [.. Tag(1, inner)];
            inner += nodeTag.Length;
            parts.Add([.. nodeTag, .. attributeTag, .. name, .. graphTag]);
        }

        parts.Add(Tag(7, inner));
        parts.Reverse();
        return [.. parts.SelectMany(p => p)];
    }

    private static byte[] Tag(int field, long length)
    {
        var bytes = new List<byte> { (byte)((field << 3) | 2) };
        var value = (ulong)length;
        while (value >= 0x80)
        {
            bytes.Add((byte)(value | 0x80));
            value >>= 7;
        }

        bytes.Add((byte)value);
        return [.. bytes];
    }

    [Fact]
    public void Find_DevZero_ReadsTheLengthTheFileSystemRecords()
    {
        // File.ReadAllBytes read /dev/zero (length 0) to the array limit: `har models register /dev/zero` ended in an
        // OutOfMemoryException and a stack trace. Its recorded length is 0: nothing to find, and the card check refuses it.
        Assert.SkipUnless(File.Exists("/dev/zero"), "No /dev/zero on this system.");
        Assert.Null(OnnxExternalData.Find("/dev/zero"));
    }
}
