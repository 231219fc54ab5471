using System.Buffers.Binary;
using System.IO.Hashing;
using System.Runtime.InteropServices;
using System.Text;

namespace Har.Drift;

/// <summary>Writes the fields of a drift state file: little-endian numbers, length-prefixed strings and arrays.</summary>
internal sealed class StateWriter(Stream stream)
{
    public void Write(int value)
    {
        Span<byte> b = stackalloc byte[4];
        BinaryPrimitives.WriteInt32LittleEndian(b, value);
        stream.Write(b);
    }

    public void Write(long value)
    {
        Span<byte> b = stackalloc byte[8];
        BinaryPrimitives.WriteInt64LittleEndian(b, value);
        stream.Write(b);
    }

    public void Write(double value) => Write(BitConverter.DoubleToInt64Bits(value));

    public void Write(bool value) => stream.WriteByte(value ? (byte)1 : (byte)0);

    public void Write(string value)
    {
        var bytes = Encoding.UTF8.GetBytes(value);
        Write(bytes.Length);
        stream.Write(bytes);
    }

    public void WriteNullable(string? value)
    {
        Write(value is not null);
        if (value is not null)
        {
            Write(value);
        }
    }

    public void Write(ReadOnlySpan<double> values)
    {
        Write(values.Length);
        if (BitConverter.IsLittleEndian)
        {
            stream.Write(MemoryMarshal.AsBytes(values));
            return;
        }

        foreach (var v in values)
        {
            Write(v);
        }
    }

    public void Write(IReadOnlyList<long> values)
    {
        Write(values.Count);
        foreach (var v in values)
        {
            Write(v);
        }
    }

    public void Write(IReadOnlyList<int> values)
    {
        Write(values.Count);
        foreach (var v in values)
        {
            Write(v);
        }
    }

    /// <summary>Writes an array that may be null (a flag, then the array).</summary>
    public void WriteNullable<T>(T[]? values, Action<StateWriter, T[]> write)
    {
        Write(values is not null);
        if (values is not null)
        {
            write(this, values);
        }
    }

    public void Write(IReadOnlyList<string> values)
    {
        Write(values.Count);
        foreach (var v in values)
        {
            Write(v);
        }
    }
}

/// <summary>
/// Reads the fields <see cref="StateWriter"/> wrote, refusing any count or length beyond the bound the caller names, so
/// that a damaged file fails with <see cref="InvalidDataException"/> instead of allocating what its bytes claim.
/// </summary>
internal sealed class StateReader(Stream stream)
{
    /// <summary>The longest string a state file holds (a diagnosis sentence, a device id).</summary>
    public const int MaxStringBytes = 1 << 20;

    public int ReadInt32()
    {
        Span<byte> b = stackalloc byte[4];
        stream.ReadExactly(b);
        return BinaryPrimitives.ReadInt32LittleEndian(b);
    }

    public long ReadInt64()
    {
        Span<byte> b = stackalloc byte[8];
        stream.ReadExactly(b);
        return BinaryPrimitives.ReadInt64LittleEndian(b);
    }

    public double ReadDouble() => BitConverter.Int64BitsToDouble(ReadInt64());

    public bool ReadBoolean() => stream.ReadByte() switch
    {
        0 => false,
        1 => true,
        -1 => throw new EndOfStreamException(),
        var b => throw new InvalidDataException($"expected a boolean (0 or 1), found {b}"),
    };

    /// <summary>Reads a count between 0 and <paramref name="max"/>.</summary>
    public int ReadCount(int max, string what)
    {
        var n = ReadInt32();
        return n >= 0 && n <= max ? n : throw new InvalidDataException($"{what}: {n}, expected 0 to {max}");
    }

    public string ReadString()
    {
        var bytes = new byte[ReadCount(MaxStringBytes, "string length")];
        stream.ReadExactly(bytes);
        return Encoding.UTF8.GetString(bytes);
    }

    public string? ReadNullableString() => ReadBoolean() ? ReadString() : null;

    public double[] ReadDoubles(int max, string what)
    {
        var values = new double[ReadCount(max, what)];
        if (BitConverter.IsLittleEndian)
        {
            stream.ReadExactly(MemoryMarshal.AsBytes(values.AsSpan()));
            return values;
        }

        for (var i = 0; i < values.Length; i++)
        {
            values[i] = ReadDouble();
        }

        return values;
    }

    public long[] ReadInt64s(int max, string what)
    {
        var values = new long[ReadCount(max, what)];
        for (var i = 0; i < values.Length; i++)
        {
            values[i] = ReadInt64();
        }

        return values;
    }

    public int[] ReadInt32s(int max, string what)
    {
        var values = new int[ReadCount(max, what)];
        for (var i = 0; i < values.Length; i++)
        {
            values[i] = ReadInt32();
        }

        return values;
    }

    /// <summary>Reads what <see cref="StateWriter.WriteNullable{T}(T[], Action{StateWriter, T[]})"/> wrote.</summary>
    public T[]? ReadNullable<T>(Func<StateReader, T[]> read) => ReadBoolean() ? read(this) : null;

    public string[] ReadStrings(int max, string what)
    {
        var values = new string[ReadCount(max, what)];
        for (var i = 0; i < values.Length; i++)
        {
            values[i] = ReadString();
        }

        return values;
    }

    public T ReadEnum<T>()
        where T : struct, Enum
    {
        var v = ReadInt32();
        var e = (T)Enum.ToObject(typeof(T), v);
        return Enum.IsDefined(e) ? e : throw new InvalidDataException($"{typeof(T).Name} {v} is not defined");
    }
}

/// <summary>Passes reads or writes through to another stream and hashes every byte that passes (XXH3, 64 bits).</summary>
internal sealed class HashingStream(Stream inner) : Stream
{
    private readonly XxHash3 _hash = new();

    public override bool CanRead => inner.CanRead;

    public override bool CanSeek => false;

    public override bool CanWrite => inner.CanWrite;

    public override long Length => throw new NotSupportedException();

    public override long Position
    {
        get => throw new NotSupportedException();
        set => throw new NotSupportedException();
    }

    /// <summary>Gets the hash of the bytes passed so far.</summary>
    public ulong Hash => _hash.GetCurrentHashAsUInt64();

    public override int Read(byte[] buffer, int offset, int count) => Read(buffer.AsSpan(offset, count));

    public override int Read(Span<byte> buffer)
    {
        var n = inner.Read(buffer);
        _hash.Append(buffer[..n]);
        return n;
    }

    public override void Write(byte[] buffer, int offset, int count) => Write(buffer.AsSpan(offset, count));

    public override void Write(ReadOnlySpan<byte> buffer)
    {
        _hash.Append(buffer);
        inner.Write(buffer);
    }

    public override void Flush() => inner.Flush();

    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

    public override void SetLength(long value) => throw new NotSupportedException();

    /// <summary>Writes the hash (8 bytes, little-endian) to the inner stream, outside the hashed bytes.</summary>
    public void WriteHash()
    {
        Span<byte> b = stackalloc byte[8];
        BinaryPrimitives.WriteUInt64LittleEndian(b, Hash);
        inner.Write(b);
    }

    /// <summary>Reads the stored hash from the inner stream and compares it with the hash of the bytes read.</summary>
    public bool ReadAndCheckHash()
    {
        var expected = Hash;
        Span<byte> b = stackalloc byte[8];
        inner.ReadExactly(b);
        return BinaryPrimitives.ReadUInt64LittleEndian(b) == expected;
    }
}
