using System.Text;

namespace Har.Testing;

/// <summary>
/// Edits a real ONNX file at the protobuf wire level (no onnx package needed), keeping every other field
/// byte for byte: the model card (<c>metadata_props</c>, field 14 of <c>ModelProto</c>) — how an attacker
/// or a careless exporter produces a model whose card says something else — and the time dimension of the
/// graph's input, dropping the graph's optional <c>value_info</c> shape hints (ONNX Runtime infers them
/// again), to make real models with a self-consistent card of another geometry (e.g. a 128-sample window).
/// The one ONNX rewriter of the test projects (compiled into each from tests/Shared).
/// </summary>
internal static class OnnxModelEditor
{
    /// <summary>Reads the model card: every <c>metadata_props</c> entry.</summary>
    public static Dictionary<string, string> ReadCard(byte[] model)
    {
        var card = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var field in Fields(model))
        {
            if (field.Number == 14 && field.WireType == 2)
            {
                var (key, value) = ReadEntry(field.Payload);
                card[key] = value;
            }
        }

        return card;
    }

    /// <summary>Returns <paramref name="model"/> with its card replaced by <paramref name="card"/>.</summary>
    public static byte[] WithCard(byte[] model, IEnumerable<KeyValuePair<string, string>> card)
    {
        var output = new MemoryStream();
        foreach (var field in Fields(model))
        {
            if (field.Number != 14)
            {
                output.Write(field.Raw);
            }
        }

        foreach (var (key, value) in card)
        {
            WriteBytes(output, 14, Entry(key, value));
        }

        return output.ToArray();
    }

    /// <summary>Returns <paramref name="model"/> with one card key set (added when missing).</summary>
    public static byte[] WithKey(byte[] model, string key, string value)
    {
        var card = ReadCard(model);
        card[key] = value;
        return WithCard(model, card);
    }

    // ModelProto.graph = 7, ModelProto.metadata_props = 14; GraphProto.input = 11, value_info = 13;
    // ValueInfoProto.type = 2; TypeProto.tensor_type = 1; Tensor.shape = 2; TensorShapeProto.dim = 1; Dimension.dim_value = 1.

    /// <summary>Replaces the card entries named in <paramref name="metadata"/> in place and, when given, the input's time dimension.</summary>
    public static byte[] Rewrite(byte[] model, IReadOnlyDictionary<string, string> metadata, int? inputTimeDimension)
    {
        var output = new MemoryStream();
        foreach (var field in Fields(model))
        {
            if (field.Number == 14 && field.WireType == 2)
            {
                var (key, value) = ReadEntry(field.Payload);
                if (metadata.TryGetValue(key, out var replacement))
                {
                    WriteBytes(output, 14, Entry(key, replacement));
                    continue;
                }
            }
            else if (field.Number == 7 && field.WireType == 2 && inputTimeDimension is { } t)
            {
                WriteBytes(output, 7, RewriteGraph(field.Payload, t));
                continue;
            }

            output.Write(field.Raw);
        }

        return output.ToArray();
    }

    // GraphProto.node = 1, initializer = 5, output = 12; NodeProto.input = 1, output = 2, name = 3, op_type = 4, attribute = 5;
    // AttributeProto.name = 1, i = 3, type = 20 (INT = 2); TensorProto.dims = 1, data_type = 2 (INT64 = 7), int64_data = 7, name = 8.

    /// <summary>
    /// Returns <paramref name="model"/> whose graph output is re-ordered along axis 1: output column j is the original
    /// column <paramref name="order"/>[j] (a Gather node appended after the graph's output, which takes over its name's
    /// role). With the card's labels re-ordered the same way the model predicts the same activities; without, its card
    /// names them wrongly.
    /// </summary>
    public static byte[] WithOutputsPermuted(byte[] model, IReadOnlyList<int> order)
    {
        var output = new MemoryStream();
        foreach (var field in Fields(model))
        {
            if (field.Number == 7 && field.WireType == 2)
            {
                WriteBytes(output, 7, PermuteGraphOutput(field.Payload, order));
                continue;
            }

            output.Write(field.Raw);
        }

        return output.ToArray();
    }

    // TensorProto.name = 8, raw_data = 9, external_data = 13 (StringStringEntryProto), data_location = 14 (EXTERNAL = 1).

    /// <summary>
    /// Returns <paramref name="model"/> with its first initializer that holds <c>raw_data</c> moved to external data:
    /// the tensor names <paramref name="location"/> (offset 0, its length) and <paramref name="data"/> is what that file
    /// must hold — what <c>onnx.save_model(..., save_as_external_data=True)</c> writes for that tensor. With the data file
    /// beside it, ONNX Runtime loads the model and computes what the original computes.
    /// </summary>
    public static byte[] WithExternalInitializer(byte[] model, string location, out byte[] data, out string tensorName)
    {
        byte[]? moved = null;
        string? name = null;
        byte[] RewriteTensor(byte[] tensor)
        {
            var output = new MemoryStream();
            byte[]? raw = null;
            foreach (var field in Fields(tensor))
            {
                if (field.Number == 9 && field.WireType == 2)
                {
                    raw = field.Payload;
                    continue;
                }

                if (field.Number == 8 && field.WireType == 2)
                {
                    name = Encoding.UTF8.GetString(field.Payload);
                }

                output.Write(field.Raw);
            }

            WriteBytes(output, 13, Entry("location", location));
            WriteBytes(output, 13, Entry("offset", "0"));
            WriteBytes(output, 13, Entry("length", raw!.Length.ToString(System.Globalization.CultureInfo.InvariantCulture)));
            WriteTag(output, 14, 0);
            WriteVarint(output, 1);
            moved = raw;
            return output.ToArray();
        }

        byte[] RewriteGraph(byte[] graph)
        {
            var output = new MemoryStream();
            foreach (var field in Fields(graph))
            {
                if (moved is null && field.Number == 5 && field.WireType == 2 && Fields(field.Payload).Any(f => f.Number == 9 && f.Payload.Length > 0))
                {
                    WriteBytes(output, 5, RewriteTensor(field.Payload));
                    continue;
                }

                output.Write(field.Raw);
            }

            return output.ToArray();
        }

        var result = Nested(model, [7], RewriteGraph);
        data = moved ?? throw new InvalidDataException("The model has no initializer with raw_data to move.");
        tensorName = name ?? string.Empty;
        return result;
    }

    /// <summary>
    /// Encodes one protobuf message from its fields, in order: a <see cref="byte"/> array or a nested message is
    /// length-delimited, a string is UTF-8 length-delimited, a <see cref="long"/> or <see cref="int"/> is a varint.
    /// For hand-built ONNX fragments (subgraphs, functions) no exporter at hand produces.
    /// </summary>
    public static byte[] Message(params (int Field, object Value)[] fields)
    {
        var output = new MemoryStream();
        foreach (var (number, value) in fields)
        {
            switch (value)
            {
                case byte[] bytes:
                    WriteBytes(output, number, bytes);
                    break;
                case string text:
                    WriteBytes(output, number, Encoding.UTF8.GetBytes(text));
                    break;
                case int or long:
                    WriteTag(output, number, 0);
                    WriteVarint(output, (ulong)Convert.ToInt64(value, System.Globalization.CultureInfo.InvariantCulture));
                    break;
                default:
                    throw new ArgumentException($"Field {number}: {value.GetType()} is not a protobuf value here.", nameof(fields));
            }
        }

        return output.ToArray();
    }

    private static byte[] PermuteGraphOutput(byte[] graph, IReadOnlyList<int> order)
    {
        var output = new MemoryStream();
        string? original = null;
        foreach (var field in Fields(graph))
        {
            if (field.Number == 12 && field.WireType == 2 && original is null)
            {
                var renamed = new MemoryStream();
                foreach (var f in Fields(field.Payload))
                {
                    if (f.Number == 1)
                    {
                        original = Encoding.UTF8.GetString(f.Payload);
                        WriteBytes(renamed, 1, Encoding.UTF8.GetBytes(original + "_reordered"));
                    }
                    else
                    {
                        renamed.Write(f.Raw);
                    }
                }

                WriteBytes(output, 12, renamed.ToArray());
                continue;
            }

            output.Write(field.Raw);
        }

        if (original is null)
        {
            throw new InvalidDataException("The graph has no output to re-order.");
        }

        var indices = new MemoryStream();
        WriteTag(indices, 1, 0);
        WriteVarint(indices, (ulong)order.Count);
        WriteTag(indices, 2, 0);
        WriteVarint(indices, 7);
        var data = new MemoryStream();
        foreach (var i in order)
        {
            WriteVarint(data, (ulong)i);
        }

        WriteBytes(indices, 7, data.ToArray());
        WriteBytes(indices, 8, Encoding.UTF8.GetBytes("reorder_indices"));
        WriteBytes(output, 5, indices.ToArray());

        var axis = new MemoryStream();
        WriteBytes(axis, 1, Encoding.UTF8.GetBytes("axis"));
        WriteTag(axis, 3, 0);
        WriteVarint(axis, 1);
        WriteTag(axis, 20, 0);
        WriteVarint(axis, 2);
        var node = new MemoryStream();
        WriteBytes(node, 1, Encoding.UTF8.GetBytes(original));
        WriteBytes(node, 1, Encoding.UTF8.GetBytes("reorder_indices"));
        WriteBytes(node, 2, Encoding.UTF8.GetBytes(original + "_reordered"));
        WriteBytes(node, 3, Encoding.UTF8.GetBytes("reorder_outputs"));
        WriteBytes(node, 4, Encoding.UTF8.GetBytes("Gather"));
        WriteBytes(node, 5, axis.ToArray());
        WriteBytes(output, 1, node.ToArray());
        return output.ToArray();
    }

    private static byte[] RewriteGraph(byte[] graph, int time)
    {
        var output = new MemoryStream();
        foreach (var field in Fields(graph))
        {
            if (field.Number == 13)
            {
                continue; // value_info: optional intermediate shape hints
            }

            if (field.Number == 11 && field.WireType == 2)
            {
                WriteBytes(output, 11, Nested(field.Payload, [2, 1, 2], shape => RewriteDims(shape, time)));
                continue;
            }

            output.Write(field.Raw);
        }

        return output.ToArray();
    }

    /// <summary>Rewrites the sub-message at the path of field numbers, keeping everything else.</summary>
    private static byte[] Nested(byte[] message, int[] path, Func<byte[], byte[]> rewrite)
    {
        if (path.Length == 0)
        {
            return rewrite(message);
        }

        var output = new MemoryStream();
        foreach (var field in Fields(message))
        {
            if (field.Number == path[0] && field.WireType == 2)
            {
                WriteBytes(output, field.Number, Nested(field.Payload, path[1..], rewrite));
            }
            else
            {
                output.Write(field.Raw);
            }
        }

        return output.ToArray();
    }

    /// <summary>Sets the second dimension ([N, T, C]: the window length) to <paramref name="time"/>.</summary>
    private static byte[] RewriteDims(byte[] shape, int time)
    {
        var output = new MemoryStream();
        var index = 0;
        foreach (var field in Fields(shape))
        {
            if (field.Number == 1 && field.WireType == 2 && index++ == 1)
            {
                var dim = new MemoryStream();
                WriteTag(dim, 1, 0);
                WriteVarint(dim, (ulong)time);
                WriteBytes(output, 1, dim.ToArray());
                continue;
            }

            output.Write(field.Raw);
        }

        return output.ToArray();
    }

    private static (string Key, string Value) ReadEntry(byte[] entry)
    {
        string key = string.Empty, value = string.Empty;
        foreach (var f in Fields(entry))
        {
            if (f.Number == 1)
            {
                key = Encoding.UTF8.GetString(f.Payload);
            }
            else if (f.Number == 2)
            {
                value = Encoding.UTF8.GetString(f.Payload);
            }
        }

        return (key, value);
    }

    private static byte[] Entry(string key, string value)
    {
        var m = new MemoryStream();
        WriteBytes(m, 1, Encoding.UTF8.GetBytes(key));
        WriteBytes(m, 2, Encoding.UTF8.GetBytes(value));
        return m.ToArray();
    }

    private static IEnumerable<Field> Fields(byte[] message)
    {
        var pos = 0;
        while (pos < message.Length)
        {
            var start = pos;
            var tag = ReadVarint(message, ref pos);
            var number = (int)(tag >> 3);
            var wire = (int)(tag & 7);
            byte[] payload = [];
            switch (wire)
            {
                case 0:
                    ReadVarint(message, ref pos);
                    break;
                case 1:
                    pos += 8;
                    break;
                case 2:
                    var length = (int)ReadVarint(message, ref pos);
                    payload = message.AsSpan(pos, length).ToArray();
                    pos += length;
                    break;
                case 5:
                    pos += 4;
                    break;
                default:
                    throw new InvalidDataException($"Unsupported protobuf wire type {wire} at offset {start}.");
            }

            yield return new Field(number, wire, payload, message.AsSpan(start, pos - start).ToArray());
        }
    }

    private static ulong ReadVarint(byte[] buffer, ref int pos)
    {
        ulong result = 0;
        for (var shift = 0; ; shift += 7)
        {
            var b = buffer[pos++];
            result |= (ulong)(b & 0x7F) << shift;
            if ((b & 0x80) == 0)
            {
                return result;
            }
        }
    }

    private static void WriteVarint(Stream s, ulong value)
    {
        while (value >= 0x80)
        {
            s.WriteByte((byte)(value | 0x80));
            value >>= 7;
        }

        s.WriteByte((byte)value);
    }

    private static void WriteTag(Stream s, int number, int wire) => WriteVarint(s, ((ulong)number << 3) | (uint)wire);

    private static void WriteBytes(Stream s, int number, byte[] payload)
    {
        WriteTag(s, number, 2);
        WriteVarint(s, (ulong)payload.Length);
        s.Write(payload);
    }

    private sealed record Field(int Number, int WireType, byte[] Payload, byte[] Raw);
}
