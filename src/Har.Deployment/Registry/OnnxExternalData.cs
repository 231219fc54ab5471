using System.Text;

namespace Har.Deployment;

/// <summary>
/// Finds tensors of an ONNX model that keep their data in another file (ONNX "external data"). The
/// registry stores, hashes and anchors <c>model.onnx</c> alone, so such data would be neither copied nor
/// verified: weights beside the registered file could change what the model computes without changing
/// the hash the audit log holds. The walk reads the protobuf wire format directly, over every place a
/// tensor can sit: the graph's initializers and sparse initializers, node attributes (tensors, sparse
/// tensors and the subgraphs of <c>If</c>, <c>Loop</c>, <c>Scan</c>, at any depth), functions and training
/// graphs.
/// </summary>
internal static class OnnxExternalData
{
    /// <summary>Deeper nesting than this is refused (ONNX Runtime's own parser stops at 100 levels).</summary>
    internal const int MaxDepth = 100;

    private const int Varint = 0;
    private const int Fixed64 = 1;
    private const int LengthDelimited = 2;
    private const int StartGroup = 3;
    private const int EndGroup = 4;
    private const int Fixed32 = 5;

    private enum Message
    {
        Model,
        Graph,
        Node,
        Attribute,
        Tensor,
        SparseTensor,
        Function,
        TrainingInfo,
    }

    /// <summary>
    /// Describes the first tensor of <paramref name="model"/> that refers to external data, or returns
    /// <see langword="null"/> when every tensor's data is inside the file.
    /// </summary>
    /// <exception cref="InvalidDataException">The bytes are not a well-formed protobuf message (with the offset), or nest deeper than <see cref="MaxDepth"/>.</exception>
    public static string? Find(ReadOnlySpan<byte> model) => Walk(model, Message.Model, 0, 0, string.Empty);

    /// <summary>Reads <paramref name="path"/> and calls <see cref="Find(ReadOnlySpan{byte})"/>.</summary>
    public static string? Find(string path) => Find(File.ReadAllBytes(path));

    private static string? Walk(ReadOnlySpan<byte> message, Message kind, int baseOffset, int depth, string where)
    {
        if (depth > MaxDepth)
        {
            throw new InvalidDataException($"The model nests messages more than {MaxDepth} levels deep (at byte {baseOffset}); expected an ONNX model.");
        }

        string? name = null;
        string? location = null;
        var external = false;
        var position = 0;
        while (position < message.Length)
        {
            var tagAt = position;
            var tag = ReadVarint(message, ref position, baseOffset);
            var field = (int)(tag >> 3);
            var wire = (int)(tag & 7);
            if (field == 0)
            {
                throw Malformed(baseOffset + tagAt, "a field number 0");
            }

            if (wire != LengthDelimited)
            {
                if (kind == Message.Tensor && field == 14 && wire == Varint)
                {
                    // TensorProto.data_location: 1 is EXTERNAL.
                    external |= ReadVarint(message, ref position, baseOffset) == 1;
                }
                else
                {
                    Skip(message, ref position, wire, field, baseOffset, depth);
                }

                continue;
            }

            var length = ReadVarint(message, ref position, baseOffset);
            if (length > (ulong)(message.Length - position))
            {
                throw Malformed(baseOffset + tagAt, $"field {field} claiming {length} bytes where {message.Length - position} remain");
            }

            var body = message.Slice(position, (int)length);
            var bodyOffset = baseOffset + position;
            position += (int)length;
            if (kind == Message.Tensor)
            {
                switch (field)
                {
                    case 8: // name
                        name = Text(body);
                        break;
                    case 13: // external_data: StringStringEntryProto { key = 1, value = 2 }
                        external = true;
                        if (FieldText(body, 1) == "location")
                        {
                            location = FieldText(body, 2);
                        }

                        break;
                }

                continue;
            }

            if (Child(kind, field) is { } child)
            {
                var found = Walk(body, child, bodyOffset, depth + 1, Describe(kind, child, field, body, where));
                if (found is not null)
                {
                    return found;
                }
            }
        }

        if (kind == Message.Tensor && external)
        {
            var tensor = name is { Length: > 0 } ? $"tensor '{Clip(name)}'" : "a tensor without a name";
            var file = location is null ? "another file" : $"'{Clip(location)}'";
            return $"{tensor} ({where}) keeps its data in {file}";
        }

        return null;
    }

    /// <summary>The message type of a length-delimited field that can hold tensors, or <see langword="null"/>.</summary>
    private static Message? Child(Message kind, int field) => (kind, field) switch
    {
        (Message.Model, 7) => Message.Graph,
        (Message.Model, 20) => Message.TrainingInfo,
        (Message.Model, 25) => Message.Function,
        (Message.Graph, 1) => Message.Node,
        (Message.Graph, 5) => Message.Tensor,
        (Message.Graph, 15) => Message.SparseTensor,
        (Message.Node, 5) => Message.Attribute,
        (Message.Attribute, 5 or 10) => Message.Tensor,
        (Message.Attribute, 6 or 11) => Message.Graph,
        (Message.Attribute, 22 or 23) => Message.SparseTensor,
        (Message.SparseTensor, 1 or 2) => Message.Tensor,
        (Message.Function, 7) => Message.Node,
        (Message.Function, 11) => Message.Attribute,
        (Message.TrainingInfo, 1 or 2) => Message.Graph,
        _ => null,
    };

    /// <summary>How the path to a nested message is named in the refusal (e.g. <c>graph › node 'If_3' › attribute 'then_branch' › subgraph › initializer</c>).</summary>
    private static string Describe(Message parent, Message child, int field, ReadOnlySpan<byte> body, string where)
    {
        var step = (parent, child) switch
        {
            (Message.Model, Message.Graph) => "graph",
            (Message.Model, Message.Function) => $"function '{Clip(FieldText(body, 1) ?? "?")}'",
            (Message.Model, Message.TrainingInfo) => "training info",
            (Message.TrainingInfo, _) => field == 1 ? "initialization" : "algorithm",
            (_, Message.Node) => $"node '{Clip(FieldText(body, 3) is { Length: > 0 } n ? n : FieldText(body, 4) ?? "?")}'",
            (_, Message.Attribute) => $"attribute '{Clip(FieldText(body, 1) ?? "?")}'",
            (Message.Attribute, Message.Graph) => "subgraph",
            (Message.Graph, Message.Tensor) => "initializer",
            (Message.Graph, Message.SparseTensor) => "sparse initializer",
            (Message.SparseTensor, _) => field == 1 ? "values" : "indices",
            _ => "tensor",
        };
        return where.Length == 0 ? step : $"{where} › {step}";
    }

    /// <summary>The first length-delimited field <paramref name="field"/> of a message, as UTF-8, or <see langword="null"/>.</summary>
    private static string? FieldText(ReadOnlySpan<byte> message, int field)
    {
        try
        {
            return FieldTextOrThrow(message, field);
        }
        catch (InvalidDataException)
        {
            return null; // a name is only for the message; a malformed body is reported where the walk reaches it
        }
    }

    private static string? FieldTextOrThrow(ReadOnlySpan<byte> message, int field)
    {
        var position = 0;
        while (position < message.Length)
        {
            var tag = ReadVarint(message, ref position, 0);
            var wire = (int)(tag & 7);
            if (wire != LengthDelimited)
            {
                Skip(message, ref position, wire, (int)(tag >> 3), 0, 0);
                continue;
            }

            var length = ReadVarint(message, ref position, 0);
            if (length > (ulong)(message.Length - position))
            {
                return null;
            }

            if ((int)(tag >> 3) == field)
            {
                return Text(message.Slice(position, (int)length));
            }

            position += (int)length;
        }

        return null;
    }

    private static void Skip(ReadOnlySpan<byte> message, ref int position, int wire, int field, int baseOffset, int depth)
    {
        switch (wire)
        {
            case Varint:
                _ = ReadVarint(message, ref position, baseOffset);
                break;
            case Fixed64:
                Advance(message, ref position, 8, baseOffset);
                break;
            case Fixed32:
                Advance(message, ref position, 4, baseOffset);
                break;
            case LengthDelimited:
                var length = ReadVarint(message, ref position, baseOffset);
                if (length > (ulong)(message.Length - position))
                {
                    throw Malformed(baseOffset + position, $"field {field} claiming {length} bytes where {message.Length - position} remain");
                }

                position += (int)length;
                break;
            case StartGroup:
                if (depth > MaxDepth)
                {
                    throw new InvalidDataException($"The model nests groups more than {MaxDepth} levels deep (at byte {baseOffset + position}); expected an ONNX model.");
                }

                while (true)
                {
                    if (position >= message.Length)
                    {
                        throw Malformed(baseOffset + position, $"group {field} without its end");
                    }

                    var tag = ReadVarint(message, ref position, baseOffset);
                    var inner = (int)(tag & 7);
                    if (inner == EndGroup)
                    {
                        if ((int)(tag >> 3) != field)
                        {
                            throw Malformed(baseOffset + position, $"group {field} ended as group {tag >> 3}");
                        }

                        break;
                    }

                    Skip(message, ref position, inner, (int)(tag >> 3), baseOffset, depth + 1);
                }

                break;
            default:
                throw Malformed(baseOffset + position, $"wire type {wire} on field {field}");
        }
    }

    private static void Advance(ReadOnlySpan<byte> message, ref int position, int count, int baseOffset)
    {
        if (message.Length - position < count)
        {
            throw Malformed(baseOffset + position, "a value cut short by the end of its message");
        }

        position += count;
    }

    private static ulong ReadVarint(ReadOnlySpan<byte> message, ref int position, int baseOffset)
    {
        ulong value = 0;
        for (var shift = 0; shift < 70; shift += 7)
        {
            if (position >= message.Length)
            {
                throw Malformed(baseOffset + position, "a number cut short by the end of its message");
            }

            var b = message[position++];
            value |= (ulong)(b & 0x7F) << shift;
            if ((b & 0x80) == 0)
            {
                return value;
            }
        }

        throw Malformed(baseOffset + position, "a number longer than 10 bytes");
    }

    private static InvalidDataException Malformed(int offset, string what) =>
        new($"The model is not a well-formed ONNX protobuf: {what} at byte {offset}.");

    private static string Text(ReadOnlySpan<byte> utf8) => Encoding.UTF8.GetString(utf8);

    private static string Clip(string s)
    {
        var printable = ModelVersionName.Printable(s);
        return printable.Length <= 80 ? printable : string.Concat(printable.AsSpan(0, 80), "…");
    }
}
