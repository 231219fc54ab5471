using System.Globalization;

namespace Har.Service.Endpoints;

/// <summary>
/// The query string of a list endpoint (<c>/v1/models</c>, <c>/v1/rollouts</c>, <c>/v1/audit/events</c>): each list is
/// paged the same way, <c>page_size</c> (1 to <see cref="MaxPageSize"/>, default <see cref="DefaultPageSize"/>) and
/// <c>page</c> (the previous response's <c>next_page</c>, an opaque cursor; absent for the first page). A parameter the
/// endpoint does not know (<c>limit</c>, <c>skip</c>, a misspelt filter), a repeated one or a value out of bounds is a
/// 400 that names it and what is expected: a filter that is silently ignored returns the wrong rows.
/// </summary>
internal sealed class ListQuery
{
    public const int DefaultPageSize = 50;
    public const int MaxPageSize = 1000;

    /// <summary>The longest cursor this API issues: a device id of a drift alarm list (a stream id, at most <see cref="RequestBodies.MaxStreamIdLength"/> characters).</summary>
    public const int MaxCursorLength = RequestBodies.MaxStreamIdLength;

    private readonly IQueryCollection _query;

    private ListQuery(IQueryCollection query, int pageSize, string? page)
    {
        _query = query;
        PageSize = pageSize;
        Page = page;
    }

    /// <summary>Entries per page.</summary>
    public int PageSize { get; }

    /// <summary>The cursor of the page to read; null for the first page.</summary>
    public string? Page { get; }

    /// <summary>Reads paging and checks that every parameter is one of <paramref name="filters"/> (or page, page_size), given once.</summary>
    public static (ListQuery? Query, IResult? Error) Parse(HttpRequest request, params string[] filters)
    {
        var accepted = string.Join(", ", filters.Append("page_size").Append("page"));
        foreach (var (name, values) in request.Query)
        {
            if (name is not ("page" or "page_size") && Array.IndexOf(filters, name) < 0)
            {
                var hint = name is "limit" or "skip" or "offset" or "cursor" or "per_page" or "pageSize"
                    ? " This API pages with page_size (how many) and page (the previous response's next_page)."
                    : "";
                return (null, Bad($"Unknown query parameter '{Shown(name)}'; expected {accepted}.{hint}"));
            }

            if (values.Count > 1)
            {
                return (null, Bad($"Query parameter '{name}' is given {values.Count} times; give it once."));
            }
        }

        var pageSize = DefaultPageSize;
        if (request.Query.TryGetValue("page_size", out var size))
        {
            if (!int.TryParse(size.ToString(), NumberStyles.None, CultureInfo.InvariantCulture, out pageSize) || pageSize is < 1 or > MaxPageSize)
            {
                return (null, Bad($"page_size is '{Shown(size.ToString())}'; expected an integer from 1 to {MaxPageSize} (default {DefaultPageSize})."));
            }
        }

        string? page = null;
        if (request.Query.TryGetValue("page", out var token))
        {
            page = token.ToString();
            if (page.Length is 0 or > MaxCursorLength)
            {
                return (null, Bad("page is empty or longer than any cursor this API issues; pass the previous response's next_page, or leave it out for the first page."));
            }
        }

        return (new ListQuery(request.Query, pageSize, page), null);
    }

    /// <summary>A text filter, or null when absent; empty is a 400 (a filter on nothing is a mistake).</summary>
    public (string? Value, IResult? Error) Text(string name)
    {
        if (!_query.TryGetValue(name, out var value))
        {
            return (null, null);
        }

        var text = value.ToString();
        return text.Length == 0 ? (null, Bad($"{name} is empty; give a value or leave the parameter out.")) : (text, null);
    }

    /// <summary>A filter that must be one of <paramref name="allowed"/> (exact match), or null when absent; empty or any other value is a 400 listing them.</summary>
    public (string? Value, IResult? Error) OneOf(string name, IReadOnlyList<string> allowed)
    {
        var (text, error) = Text(name);
        if (text is null || allowed.Contains(text, StringComparer.Ordinal))
        {
            return (text, error);
        }

        return (null, Bad($"{name} is '{Shown(text)}'; expected one of {string.Join(", ", allowed)}."));
    }

    /// <summary>An ISO 8601 time (<c>2026-12-03T10:00:00Z</c>, an offset, or a date: midnight UTC), or null when absent.</summary>
    public (DateTimeOffset? Value, IResult? Error) Time(string name)
    {
        if (!_query.TryGetValue(name, out var value))
        {
            return (null, null);
        }

        var text = value.ToString();
        string[] formats = ["yyyy-MM-dd'T'HH:mm:ss.FFFFFFFK", "yyyy-MM-dd'T'HH:mm:ssK", "yyyy-MM-dd'T'HH:mmK", "yyyy-MM-dd"];
        return DateTimeOffset.TryParseExact(text, formats, CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal | DateTimeStyles.AdjustToUniversal, out var time)
            ? (time, null)
            : (null, Bad($"{name} is '{Shown(text)}'; expected an ISO 8601 time such as 2026-12-03T10:00:00Z (an offset such as +01:00 instead of Z; no offset means UTC) or a date such as 2026-12-03 (midnight UTC)."));
    }

    /// <summary>A 400 problem (title "Invalid query").</summary>
    public static IResult Bad(string detail) => Results.Problem(statusCode: StatusCodes.Status400BadRequest, title: "Invalid query", detail: detail);

    /// <summary>A client value as shown in an error: bounded, control characters escaped.</summary>
    private static string Shown(string value)
    {
        var text = value.Length <= 64 ? value : value[..64] + "…";
        return string.Concat(text.Select(c => char.IsControl(c) ? $"\\u{(int)c:x4}" : c.ToString()));
    }
}
