using System.Buffers;
using Microsoft.AspNetCore.Http.Features;

namespace Har.Service.Security;

/// <summary>
/// Refuses (400, problem details) a request target whose percent-encoded bytes are not valid UTF-8: invalid
/// bytes (<c>%FF</c>), overlong forms (<c>%C0%AF</c>) and encoded surrogates (<c>%ED%A0%80</c>). ASP.NET Core
/// leaves such sequences percent-encoded in the path and replaces them with U+FFFD in the query, so without
/// this a stream id or a query filter would silently mean something other than what was sent.
/// </summary>
internal sealed class RequestTargetValidationMiddleware(RequestDelegate next)
{
    public Task InvokeAsync(HttpContext context)
    {
        var raw = context.Features.Get<IHttpRequestFeature>()?.RawTarget;
        if (raw is null || IsValid(raw))
        {
            return next(context);
        }

        return Results.Problem(
            statusCode: StatusCodes.Status400BadRequest,
            title: "Invalid request target",
            detail: "The path or query holds percent-encoded bytes that are not valid UTF-8 (invalid bytes, an overlong form or an encoded surrogate); encode text as UTF-8 before percent-encoding it.")
            .ExecuteAsync(context);
    }

    /// <summary>Whether the percent-decoded target is valid UTF-8 (a malformed escape such as <c>%G1</c> is kept as its characters).</summary>
    internal static bool IsValid(string target)
    {
        if (!target.Contains('%', StringComparison.Ordinal))
        {
            return System.Text.Unicode.Utf8.IsValid(System.Text.Encoding.UTF8.GetBytes(target)) && !HasLoneSurrogate(target);
        }

        var buffer = ArrayPool<byte>.Shared.Rent(System.Text.Encoding.UTF8.GetMaxByteCount(target.Length));
        try
        {
            var length = 0;
            for (var i = 0; i < target.Length; i++)
            {
                var c = target[i];
                if (c == '%' && i + 2 < target.Length && Uri.IsHexDigit(target[i + 1]) && Uri.IsHexDigit(target[i + 2]))
                {
                    buffer[length++] = (byte)((HexValue(target[i + 1]) << 4) | HexValue(target[i + 2]));
                    i += 2;
                }
                else if (c < 0x80)
                {
                    buffer[length++] = (byte)c;
                }
                else if (char.IsSurrogate(c))
                {
                    if (!char.IsHighSurrogate(c) || i + 1 >= target.Length || !char.IsLowSurrogate(target[i + 1]))
                    {
                        return false;
                    }

                    length += System.Text.Encoding.UTF8.GetBytes(target.AsSpan(i, 2), buffer.AsSpan(length));
                    i++;
                }
                else
                {
                    length += System.Text.Encoding.UTF8.GetBytes(target.AsSpan(i, 1), buffer.AsSpan(length));
                }
            }

            return System.Text.Unicode.Utf8.IsValid(buffer.AsSpan(0, length));
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(buffer);
        }
    }

    private static bool HasLoneSurrogate(string text)
    {
        for (var i = 0; i < text.Length; i++)
        {
            if (char.IsHighSurrogate(text[i]) && i + 1 < text.Length && char.IsLowSurrogate(text[i + 1]))
            {
                i++;
            }
            else if (char.IsSurrogate(text[i]))
            {
                return true;
            }
        }

        return false;
    }

    private static int HexValue(char c) => c <= '9' ? c - '0' : (c | 0x20) - 'a' + 10;
}
