using System.Text;

namespace Har.Service.Tests.Registry;

/// <summary>
/// Rewrites the model card (<c>metadata_props</c>, field 14 of the ONNX <c>ModelProto</c>) of a real ONNX
/// file at the protobuf wire level, keeping every other field byte for byte: how an attacker or a careless
/// exporter produces a model whose card says something else.
/// </summary>
internal static class OnnxCardEditor
{
    private const int MetadataField = 14;

    public static Dictionary<string, string> ReadCard(byte[] model)
    {
        var card = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var (field, start, length) in Fields(model))
        {
            if (field == MetadataField)
            {
                string? key = null, value = null;
                foreach (var (inner, s, l) in Fields(model.AsSpan(start, length).ToArray()))
                {
                    var text = Encoding.UTF8.GetString(model, start + s, l);
                    if (inner == 1)
                    {
                        key = text;
                    }
                    else if (inner == 2)
                    {
                        value = text;
                    }
                }

                card[key!] = value ?? string.Empty;
            }
        }

        return card;
    }

    /// <summary>Returns <paramref name="model"/> with its card replaced by <paramref name="card"/>.</summary>
    public static byte[] WithCard(byte[] model, IEnumerable<KeyValuePair<string, string>> card)
    {
        using var output = new MemoryStream();
        var position = 0;
        while (position < model.Length)
        {
            var fieldStart = position;
            var tag = ReadVarint(model, ref position);
            var wireType = (int)(tag & 7);
            SkipValue(model, ref position, wireType);
            if ((int)(tag >> 3) != MetadataField)
            {
                output.Write(model, fieldStart, position - fieldStart);
            }
        }

        foreach (var (key, value) in card)
        {
            var entry = new MemoryStream();
            WriteBytes(entry, 1, Encoding.UTF8.GetBytes(key));
            WriteBytes(entry, 2, Encoding.UTF8.GetBytes(value));
            WriteBytes(output, MetadataField, entry.ToArray());
        }

        return output.ToArray();
    }

    /// <summary>Returns <paramref name="model"/> with one card key set.</summary>
    public static byte[] WithKey(byte[] model, string key, string value)
    {
        var card = ReadCard(model);
        card[key] = value;
        return WithCard(model, card);
    }

    private static List<(int Field, int Start, int Length)> Fields(byte[] message)
    {
        var result = new List<(int Field, int Start, int Length)>();
        var position = 0;
        while (position < message.Length)
        {
            var tag = ReadVarint(message, ref position);
            var wireType = (int)(tag & 7);
            if (wireType == 2)
            {
                var length = (int)ReadVarint(message, ref position);
                result.Add(((int)(tag >> 3), position, length));
                position += length;
            }
            else
            {
                SkipValue(message, ref position, wireType);
            }
        }

        return result;
    }

    private static void SkipValue(byte[] data, ref int position, int wireType)
    {
        switch (wireType)
        {
            case 0:
                ReadVarint(data, ref position);
                break;
            case 1:
                position += 8;
                break;
            case 2:
                var length = (int)ReadVarint(data, ref position);
                position += length;
                break;
            case 5:
                position += 4;
                break;
            default:
                throw new InvalidDataException($"Unsupported protobuf wire type {wireType} at byte {position}.");
        }
    }

    private static ulong ReadVarint(byte[] data, ref int position)
    {
        ulong result = 0;
        for (var shift = 0; ; shift += 7)
        {
            var b = data[position++];
            result |= (ulong)(b & 0x7F) << shift;
            if ((b & 0x80) == 0)
            {
                return result;
            }
        }
    }

    private static void WriteVarint(Stream stream, ulong value)
    {
        while (value >= 0x80)
        {
            stream.WriteByte((byte)(value | 0x80));
            value >>= 7;
        }

        stream.WriteByte((byte)value);
    }

    private static void WriteBytes(Stream stream, int field, byte[] bytes)
    {
        WriteVarint(stream, ((ulong)field << 3) | 2);
        WriteVarint(stream, (ulong)bytes.Length);
        stream.Write(bytes);
    }
}
