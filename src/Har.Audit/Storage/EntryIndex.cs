using System.Buffers.Binary;
using Microsoft.Win32.SafeHandles;

namespace Har.Audit.Storage;

/// <summary>One row of <c>entries.idx</c>: where an entry is and what it can be queried by.</summary>
internal readonly record struct IndexRow(long Offset, long Ticks, int FrameLength, AuditRecordKind Kind, uint EventType, uint EntityType, uint EntityId, uint Actor)
{
    public const int Size = 40;

    public static uint HashText(string s)
    {
        var h = 2166136261u;
        foreach (var c in s)
        {
            h = (h ^ c) * 16777619u;
        }

        return h;
    }

    public static IndexRow For(long offset, int frameLength, AuditRecord record) => new(
        offset,
        record.Timestamp.UtcTicks,
        frameLength,
        record.Kind,
        HashText(record.IndexEventType),
        HashText(record.IndexEntityType),
        HashText(record.IndexEntityId),
        HashText(record.IndexActor));

    public static IndexRow Read(ReadOnlySpan<byte> s) => new(
        BinaryPrimitives.ReadInt64LittleEndian(s),
        BinaryPrimitives.ReadInt64LittleEndian(s[8..]),
        BinaryPrimitives.ReadInt32LittleEndian(s[16..]),
        (AuditRecordKind)BinaryPrimitives.ReadInt32LittleEndian(s[20..]),
        BinaryPrimitives.ReadUInt32LittleEndian(s[24..]),
        BinaryPrimitives.ReadUInt32LittleEndian(s[28..]),
        BinaryPrimitives.ReadUInt32LittleEndian(s[32..]),
        BinaryPrimitives.ReadUInt32LittleEndian(s[36..]));

    public void Write(Span<byte> s)
    {
        BinaryPrimitives.WriteInt64LittleEndian(s, Offset);
        BinaryPrimitives.WriteInt64LittleEndian(s[8..], Ticks);
        BinaryPrimitives.WriteInt32LittleEndian(s[16..], FrameLength);
        BinaryPrimitives.WriteInt32LittleEndian(s[20..], (int)Kind);
        BinaryPrimitives.WriteUInt32LittleEndian(s[24..], EventType);
        BinaryPrimitives.WriteUInt32LittleEndian(s[28..], EntityType);
        BinaryPrimitives.WriteUInt32LittleEndian(s[32..], EntityId);
        BinaryPrimitives.WriteUInt32LittleEndian(s[36..], Actor);
    }
}

/// <summary><c>entries.idx</c>: fixed 40-byte rows, row i describing entry i. Derived from the segment; rebuilt on open past the last seal.</summary>
internal sealed class EntryIndex : IDisposable
{
    private readonly SafeFileHandle _file;
    private byte[] _pending = new byte[IndexRow.Size * 256];
    private int _pendingRows;

    public EntryIndex(string path)
    {
        Path = path;
        _file = File.OpenHandle(path, FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.Read);
    }

    public string Path { get; }

    public long Count { get; private set; }

    public long FileRows => RandomAccess.GetLength(_file) / IndexRow.Size;

    public void Reset(long size)
    {
        RandomAccess.SetLength(_file, size * IndexRow.Size);
        Count = size;
        _pendingRows = 0;
    }

    public void Append(in IndexRow row)
    {
        if ((_pendingRows + 1) * IndexRow.Size > _pending.Length)
        {
            Array.Resize(ref _pending, _pending.Length * 2);
        }

        row.Write(_pending.AsSpan(_pendingRows * IndexRow.Size));
        _pendingRows++;
    }

    public void WritePending()
    {
        if (_pendingRows == 0)
        {
            return;
        }

        RandomAccess.Write(_file, _pending.AsSpan(0, _pendingRows * IndexRow.Size), Count * IndexRow.Size);
        Count += _pendingRows;
        _pendingRows = 0;
    }

    public void Flush() => RandomAccess.FlushToDisk(_file);

    public IndexRow Read(long index)
    {
        Span<byte> row = stackalloc byte[IndexRow.Size];
        if (RandomAccess.Read(_file, row, index * IndexRow.Size) != IndexRow.Size)
        {
            throw new InvalidDataException($"Index row {index} is missing from {Path}.");
        }

        return IndexRow.Read(row);
    }

    /// <summary>Reads consecutive rows starting at <paramref name="first"/>; returns how many were read.</summary>
    public int ReadRows(long first, Span<byte> destination) => RandomAccess.Read(_file, destination, first * IndexRow.Size) / IndexRow.Size;

    public void Dispose() => _file.Dispose();
}
