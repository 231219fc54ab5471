using System.Buffers;
using System.Buffers.Binary;
using System.Globalization;
using System.Runtime.InteropServices;
using System.Text.Json;
using Har.Audit.Hashing;

namespace Har.Audit.Storage;

/// <summary>
/// The segment layout: an 8-byte header <c>HARLOG01</c>, then frames
/// <c>[u32 LE payload length][u32 LE CRC-32C of (length bytes ‖ payload)][payload]</c>. The payload is the
/// entry: canonical JSON <c>{"index":i,"kind":k,"prev":"hex","record":{…}}</c>, where <c>prev</c> is the
/// leaf hash of entry i−1 (64 zeros for entry 0) — the chain — and the entry's leaf hash is
/// SHA-256(0x00 ‖ payload).
/// </summary>
internal static class LogEnvelope
{
    public const int HeaderSize = 8;
    public const int FrameOverhead = 8;
    public static ReadOnlySpan<byte> Magic => "HARLOG01"u8;

    public static readonly byte[] ZeroHash = new byte[32];
    private static readonly byte[] HexDigits = "0123456789abcdef"u8.ToArray();

    /// <summary>Appends a complete frame for an entry to <paramref name="output"/>; returns the payload's offset and length within the output.</summary>
    public static (int PayloadStart, int PayloadLength) WriteFrame(ArrayBufferWriter<byte> output, long index, AuditRecordKind kind, ReadOnlySpan<byte> prevHash, ReadOnlySpan<byte> record)
    {
        var frameStart = output.WrittenCount;
        output.GetSpan(FrameOverhead);
        output.Advance(FrameOverhead);
        var payloadStart = output.WrittenCount;
        Append(output, "{\"index\":"u8);
        var span = output.GetSpan(24);
        index.TryFormat(span, out var w, default, CultureInfo.InvariantCulture);
        output.Advance(w);
        Append(output, ",\"kind\":\""u8);
        Append(output, kind switch
        {
            AuditRecordKind.Deployment => "deployment"u8,
            AuditRecordKind.Rollback => "rollback"u8,
            _ => "event"u8,
        });
        Append(output, "\",\"prev\":\""u8);
        span = output.GetSpan(64);
        for (var i = 0; i < 32; i++)
        {
            span[2 * i] = HexDigits[prevHash[i] >> 4];
            span[(2 * i) + 1] = HexDigits[prevHash[i] & 0xF];
        }

        output.Advance(64);
        Append(output, "\",\"record\":"u8);
        Append(output, record);
        Append(output, "}"u8);
        var payloadLength = output.WrittenCount - payloadStart;

        // The header is patched in place now that the length is known.
        var written = MemoryMarshal.AsMemory(output.WrittenMemory).Span;
        var header = written.Slice(frameStart, FrameOverhead);
        BinaryPrimitives.WriteUInt32LittleEndian(header, (uint)payloadLength);
        var crc = Crc32C.Compute(header[..4], written.Slice(payloadStart, payloadLength));
        BinaryPrimitives.WriteUInt32LittleEndian(header[4..], crc);
        return (payloadStart, payloadLength);
    }

    private static void Append(ArrayBufferWriter<byte> output, ReadOnlySpan<byte> bytes)
    {
        bytes.CopyTo(output.GetSpan(bytes.Length));
        output.Advance(bytes.Length);
    }

    /// <summary>The CRC a frame must carry for <paramref name="payload"/>.</summary>
    public static uint FrameCrc(ReadOnlySpan<byte> lengthBytes, ReadOnlySpan<byte> payload) => Crc32C.Compute(lengthBytes, payload);

    /// <summary>
    /// Counts the well-formed frames (length in range, CRC-32C matching) that start in [<paramref name="from"/>,
    /// <paramref name="end"/>): every payload begins with <c>{"index":</c>, so candidates are found by that text and
    /// checked against the frame header before it. Tells a torn tail (nothing valid after the bad frame) from
    /// damage in the middle of acknowledged entries.
    /// </summary>
    public static (long Count, long FirstOffset) CountValidFrames(Microsoft.Win32.SafeHandles.SafeFileHandle segment, long from, long end)
    {
        ReadOnlySpan<byte> marker = "{\"index\":"u8;
        const int Chunk = 1 << 20;
        var buffer = new byte[Chunk + 16];
        var header = new byte[FrameOverhead];
        long count = 0, first = -1;
        var pos = from + FrameOverhead;
        while (pos < end)
        {
            var n = RandomAccess.Read(segment, buffer.AsSpan(0, (int)Math.Min(buffer.Length, end - pos)), pos);
            if (n < marker.Length)
            {
                break;
            }

            var advanced = false;
            var span = buffer.AsSpan(0, n);
            for (var i = span.IndexOf(marker); i >= 0;)
            {
                var payloadAt = pos + i;
                if (RandomAccess.Read(segment, header, payloadAt - FrameOverhead) == FrameOverhead)
                {
                    var length = BinaryPrimitives.ReadUInt32LittleEndian(header);
                    if (length > 0 && length <= (64 << 20) + 4096 && payloadAt + length <= end)
                    {
                        var payload = new byte[length];
                        if (RandomAccess.Read(segment, payload, payloadAt) == length && BinaryPrimitives.ReadUInt32LittleEndian(header.AsSpan(4)) == FrameCrc(header.AsSpan(0, 4), payload))
                        {
                            count++;
                            first = first < 0 ? payloadAt - FrameOverhead : first;
                            pos = payloadAt + length + FrameOverhead;
                            advanced = true;
                            break;
                        }
                    }
                }

                var next = span[(i + 1)..].IndexOf(marker);
                i = next < 0 ? -1 : i + 1 + next;
            }

            if (!advanced)
            {
                pos += n - marker.Length + 1;
            }
        }

        return (count, first);
    }

    /// <summary>
    /// The record's canonical bytes within an entry payload written by <see cref="WriteFrame"/>
    /// (<c>{"index":…,"kind":"…","prev":"…","record":RECORD}</c>): what the appender passed, byte for byte.
    /// </summary>
    public static ReadOnlySpan<byte> RecordBytes(ReadOnlySpan<byte> payload)
    {
        // Index digits, a kind word and 64 hex digits come before: the first occurrence is the envelope's own member.
        var at = payload.IndexOf(",\"record\":"u8);
        return at < 0 || payload.Length < at + 11 ? default : payload[(at + 10)..^1];
    }

    /// <summary>Parses an entry payload; returns null and a reason when it is not a well-formed entry.</summary>
    public static ParsedEntry? TryParse(ReadOnlySpan<byte> payload, out string? problem)
    {
        try
        {
            var reader = new Utf8JsonReader(payload);
            using var doc = JsonDocument.ParseValue(ref reader);
            var root = doc.RootElement;
            if (root.ValueKind != JsonValueKind.Object)
            {
                problem = "entry is not a JSON object";
                return null;
            }

            long index = -1;
            string? kindName = null;
            byte[]? prev = null;
            JsonElement record = default;
            var members = 0;
            foreach (var p in root.EnumerateObject())
            {
                members++;
                switch (p.Name)
                {
                    case "index" when p.Value.ValueKind == JsonValueKind.Number && p.Value.TryGetInt64(out var i):
                        index = i;
                        break;
                    case "kind" when p.Value.ValueKind == JsonValueKind.String:
                        kindName = p.Value.GetString();
                        break;
                    case "prev" when p.Value.ValueKind == JsonValueKind.String && p.Value.GetString() is { Length: 64 } hex:
                        prev = Convert.FromHexString(hex);
                        break;
                    case "record" when p.Value.ValueKind == JsonValueKind.Object:
                        record = p.Value;
                        break;
                    default:
                        problem = $"entry member '{p.Name}' is unexpected or has the wrong type";
                        return null;
                }
            }

            if (members != 4 || index < 0 || kindName is null || prev is null || record.ValueKind != JsonValueKind.Object)
            {
                problem = "entry lacks one of index, kind, prev, record";
                return null;
            }

            if (!AuditRecord.TryParseKind(kindName, out var kind))
            {
                problem = $"entry kind '{kindName}' is not event, deployment or rollback";
                return null;
            }

            var parsed = AuditRecord.Read(kind, record);
            problem = null;
            return new ParsedEntry(index, kind, prev, parsed);
        }
        catch (Exception ex) when (ex is JsonException or FormatException or InvalidOperationException)
        {
            problem = $"entry is not a valid record: {ex.Message}";
            return null;
        }
    }
}

internal sealed record ParsedEntry(long Index, AuditRecordKind Kind, byte[] PreviousHash, AuditRecord Record);
