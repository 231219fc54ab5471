using System.Runtime.InteropServices;
using System.Security.Cryptography;

namespace Har.Audit.Hashing;

/// <summary>
/// SHA-256 of the short inputs the log hashes per entry (a leaf: 0x00 ‖ entry, a few hundred bytes; a
/// Merkle node: 0x01 ‖ left ‖ right, 65 bytes). On Linux with OpenSSL 3, <see cref="SHA256.HashData(ReadOnlySpan{byte}, Span{byte})"/>
/// goes through the EVP provider layer, whose fixed cost (about 0.5–1.6 µs per call on the benchmark VM) is
/// several times the hashing itself; the low-level <c>SHA256_Init/Update/Final</c> of the same libcrypto run
/// the same SHA-NI code for ~0.1 µs per node. They are used when libcrypto exports them and a self-test
/// against <see cref="SHA256.HashData(ReadOnlySpan{byte}, Span{byte})"/> passes; otherwise (Windows, macOS,
/// no OpenSSL) the .NET API is used. Both give the same digests.
/// </summary>
internal static unsafe class Sha256
{
    public const int HashSize = 32;

    // sizeof(SHA256_CTX) is 112 bytes in OpenSSL 1.1 and 3.x; the buffer is generous.
    private const int ContextSize = 256;

    private static readonly delegate* unmanaged<byte*, int> NativeInit;
    private static readonly delegate* unmanaged<byte*, byte*, nuint, int> NativeUpdate;
    private static readonly delegate* unmanaged<byte*, byte*, int> NativeFinal;

#pragma warning disable CA1810 // the function pointers need a static constructor
    static Sha256()
#pragma warning restore CA1810
    {
        if (!OperatingSystem.IsLinux() || Environment.GetEnvironmentVariable("HAR_AUDIT_SHA256") == "managed")
        {
            return;
        }

        foreach (var name in (ReadOnlySpan<string>)["libcrypto.so.3", "libcrypto.so.1.1"])
        {
            if (!NativeLibrary.TryLoad(name, out var lib))
            {
                continue;
            }

            if (NativeLibrary.TryGetExport(lib, "SHA256_Init", out var init)
                && NativeLibrary.TryGetExport(lib, "SHA256_Update", out var update)
                && NativeLibrary.TryGetExport(lib, "SHA256_Final", out var final))
            {
                NativeInit = (delegate* unmanaged<byte*, int>)init;
                NativeUpdate = (delegate* unmanaged<byte*, byte*, nuint, int>)update;
                NativeFinal = (delegate* unmanaged<byte*, byte*, int>)final;
                if (SelfTest())
                {
                    IsNative = true;
                    return;
                }
            }
        }
    }

    /// <summary>Gets a value indicating whether the low-level libcrypto functions are in use.</summary>
    public static bool IsNative { get; }

    /// <summary>SHA-256 of <paramref name="data"/>.</summary>
    public static void Hash(ReadOnlySpan<byte> data, Span<byte> destination)
    {
        if (!IsNative)
        {
            SHA256.HashData(data, destination);
            return;
        }

        Native(default, data, default, destination);
    }

    /// <summary>SHA-256 of <paramref name="prefix"/> ‖ <paramref name="data"/> (an RFC 9162 leaf with prefix 0x00).</summary>
    public static void Hash(byte prefix, ReadOnlySpan<byte> data, Span<byte> destination)
    {
        ReadOnlySpan<byte> p = [prefix];
        if (!IsNative)
        {
            Managed(p, data, default, destination);
            return;
        }

        Native(p, data, default, destination);
    }

    /// <summary>SHA-256 of <paramref name="prefix"/> ‖ <paramref name="left"/> ‖ <paramref name="right"/> (an RFC 9162 node with prefix 0x01).</summary>
    public static void Hash(byte prefix, ReadOnlySpan<byte> left, ReadOnlySpan<byte> right, Span<byte> destination)
    {
        ReadOnlySpan<byte> p = [prefix];
        if (!IsNative)
        {
            Managed(p, left, right, destination);
            return;
        }

        Native(p, left, right, destination);
    }

    /// <summary>The .NET path, for tests to compare the native one against.</summary>
    internal static void Managed(ReadOnlySpan<byte> a, ReadOnlySpan<byte> b, ReadOnlySpan<byte> c, Span<byte> destination)
    {
        var total = a.Length + b.Length + c.Length;
        if (total <= 1024)
        {
            Span<byte> buffer = stackalloc byte[total];
            a.CopyTo(buffer);
            b.CopyTo(buffer[a.Length..]);
            c.CopyTo(buffer[(a.Length + b.Length)..]);
            SHA256.HashData(buffer, destination);
            return;
        }

        using var h = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        h.AppendData(a);
        h.AppendData(b);
        h.AppendData(c);
        h.GetHashAndReset(destination);
    }

    private static void Native(ReadOnlySpan<byte> a, ReadOnlySpan<byte> b, ReadOnlySpan<byte> c, Span<byte> destination)
    {
        if (destination.Length < HashSize)
        {
            throw new ArgumentException("The destination is shorter than a SHA-256 hash (32 bytes).", nameof(destination));
        }

        var ctx = stackalloc byte[ContextSize];
        fixed (byte* pa = a)
        fixed (byte* pb = b)
        fixed (byte* pc = c)
        fixed (byte* pd = destination)
        {
            var ok = NativeInit(ctx);
            if (a.Length > 0)
            {
                ok &= NativeUpdate(ctx, pa, (nuint)a.Length);
            }

            if (b.Length > 0)
            {
                ok &= NativeUpdate(ctx, pb, (nuint)b.Length);
            }

            if (c.Length > 0)
            {
                ok &= NativeUpdate(ctx, pc, (nuint)c.Length);
            }

            ok &= NativeFinal(pd, ctx);
            if (ok != 1)
            {
                throw new CryptographicException("OpenSSL SHA256_Init/Update/Final failed.");
            }
        }
    }

    private static bool SelfTest()
    {
        try
        {
            var data = new byte[300];
            for (var i = 0; i < data.Length; i++)
            {
                data[i] = (byte)((i * 31) + 7);
            }

            Span<byte> expected = stackalloc byte[HashSize];
            Span<byte> actual = stackalloc byte[HashSize];
            foreach (var n in (ReadOnlySpan<int>)[0, 1, 55, 56, 63, 64, 65, 119, 128, 299])
            {
                Managed([0x01], data.AsSpan(0, n), data.AsSpan(n), expected);
                Native([0x01], data.AsSpan(0, n), data.AsSpan(n), actual);
                if (!actual.SequenceEqual(expected))
                {
                    return false;
                }

                SHA256.HashData(data.AsSpan(0, n), expected);
                Native(default, data.AsSpan(0, n), default, actual);
                if (!actual.SequenceEqual(expected))
                {
                    return false;
                }
            }

            return true;
        }
        catch (Exception ex) when (ex is CryptographicException or EntryPointNotFoundException or DllNotFoundException)
        {
            return false;
        }
    }
}
