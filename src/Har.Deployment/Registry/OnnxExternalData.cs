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
    public static string? Find(ReadOnlySpan<byte> model) =>
        Walk(model, Message.Model, 0, 0) is { } found ? $"{found.Tensor} ({found.Path}) keeps its data in {found.File}" : null;

    /// <summary>
    /// Reads <paramref name="path"/> and calls <see cref="Find(ReadOnlySpan{byte})"/>. It reads the length the file system
    /// records, no more: <see cref="File.ReadAllBytes"/> reads a file of length 0 (<c>/dev/zero</c>) until it ends, which
    /// a device may never do.
    /// </summary>
    public static string? Find(string path)
    {
        using var handle = File.OpenHandle(path);
        var length = RandomAccess.GetLength(handle);
        if (length > Array.MaxLength)
        {
            throw new InvalidDataException($"The file has {length} bytes; an ONNX model without external data is at most 2 GiB.");
        }

        var bytes = GC.AllocateUninitializedArray<byte>((int)length);
        var read = 0;
        while (read < bytes.Length)
        {
            var n = RandomAccess.Read(handle, bytes.AsSpan(read), read);
            if (n == 0)
            {
                break;
            }

            read += n;
        }

        return Find(bytes.AsSpan(0, read));
    }

    private static Found? Walk(ReadOnlySpan<byte> message, Message kind, int baseOffset, int depth)
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
            var f = ReadField(message, ref position, baseOffset, depth);
            if (f.Wire == EndGroup)
            {
                throw Malformed(baseOffset + position, $"the end of group {f.Number}, which never started");
            }

            if (kind == Message.Tensor)
            {
                switch (f.Number, f.Wire)
                {
                    case (14, Varint): // data_location: 1 is EXTERNAL
                        external |= f.Value == 1;
                        break;
                    case (8, LengthDelimited): // name
                        name = Encoding.UTF8.GetString(f.Body);
                        break;
                    case (13, LengthDelimited): // external_data: StringStringEntryProto { key = 1, value = 2 }
                        external = true;
                        if (FieldText(f.Body, 1) == "location")
                        {
                            location = FieldText(f.Body, 2);
                        }

                        break;
                }
            }
            else if (f.Wire == LengthDelimited && Child(kind, f.Number) is { } child && Walk(f.Body, child, f.BodyOffset, depth + 1) is { } found)
            {
                // The path is named only for the tensor found: no other message is read twice.
                var step = Step(kind, child, f.Number, f.Body);
                return found with { Path = found.Path.Length == 0 ? step : $"{step} › {found.Path}" };
            }
        }

        if (kind == Message.Tensor && external)
        {
            return new Found(
                name is { Length: > 0 } ? $"tensor '{Clip(name)}'" : "a tensor without a name",
                location is null ? "another file" : $"'{Clip(location)}'",
                string.Empty);
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

    /// <summary>How one step of the path to the tensor is named in the refusal (e.g. <c>graph › node 'If_3' › attribute 'then_branch' › subgraph › initializer</c>).</summary>
    private static string Step(Message parent, Message child, int field, ReadOnlySpan<byte> body) => (parent, child) switch
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

    /// <summary>The first length-delimited field <paramref name="field"/> of a message, as UTF-8, or <see langword="null"/> (also when the message is malformed: a name is only for the refusal's text).</summary>
    private static string? FieldText(ReadOnlySpan<byte> message, int field)
    {
        try
        {
            var position = 0;
            while (position < message.Length)
            {
                var f = ReadField(message, ref position, 0, 0);
                if (f.Number == field && f.Wire == LengthDelimited)
                {
                    return Encoding.UTF8.GetString(f.Body);
                }
            }
        }
        catch (InvalidDataException)
        {
        }

        return null;
    }

    /// <summary>
    /// Reads one field at <paramref name="position"/>: a varint's value, or a length-delimited field's body (and its offset);
    /// any other wire type (fixed 32 and 64 bits, groups) is skipped.
    /// </summary>
    private static Field ReadField(ReadOnlySpan<byte> message, ref int position, int baseOffset, int depth)
    {
        var at = position;
        var tag = ReadVarint(message, ref position, baseOffset);
        var field = (int)(tag >> 3);
        var wire = (int)(tag & 7);
        if (field == 0)
        {
            throw Malformed(baseOffset + at, "a field number 0");
        }

        switch (wire)
        {
            case Varint:
                return new Field(field, wire, ReadVarint(message, ref position, baseOffset), default, 0);
            case LengthDelimited:
                var length = ReadVarint(message, ref position, baseOffset);
                if (length > (ulong)(message.Length - position))
                {
                    throw Malformed(baseOffset + at, $"field {field} claiming {length} bytes where {message.Length - position} remain");
                }

                var start = position;
                position += (int)length;
                return new Field(field, wire, 0, message.Slice(start, (int)length), baseOffset + start);
            case Fixed64 or Fixed32:
                var size = wire == Fixed64 ? 8 : 4;
                if (message.Length - position < size)
                {
                    throw Malformed(baseOffset + position, "a value cut short by the end of its message");
                }

                position += size;
                return new Field(field, wire, 0, default, 0);
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

                    var inner = ReadField(message, ref position, baseOffset, depth + 1);
                    if (inner.Wire == EndGroup)
                    {
                        return inner.Number == field ? new Field(field, wire, 0, default, 0) : throw Malformed(baseOffset + position, $"group {field} ended as group {inner.Number}");
                    }
                }

            case EndGroup:
                return new Field(field, wire, 0, default, 0); // the caller's group ends here
            default:
                throw Malformed(baseOffset + position, $"wire type {wire} on field {field}");
        }
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

    private static string Clip(string s)
    {
        var printable = ModelVersionName.Printable(s);
        return printable.Length <= 80 ? printable : string.Concat(printable.AsSpan(0, 80), "…");
    }

    /// <summary>One field: its number and wire type, a varint's value, a length-delimited field's body and where the body starts in the model.</summary>
    private readonly ref struct Field(int number, int wire, ulong value, ReadOnlySpan<byte> body, int bodyOffset)
    {
        public int Number { get; } = number;

        public int Wire { get; } = wire;

        public ulong Value { get; } = value;

        public ReadOnlySpan<byte> Body { get; } = body;

        public int BodyOffset { get; } = bodyOffset;
    }

    /// <summary>A tensor with external data: its name, its file and the path of messages to it from the model.</summary>
    private readonly record struct Found(string Tensor, string File, string Path);
}
