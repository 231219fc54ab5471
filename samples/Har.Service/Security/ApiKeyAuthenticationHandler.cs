using System.Security.Claims;
using System.Security.Cryptography;
using System.Text;
using System.Text.Encodings.Web;
using Microsoft.AspNetCore.Authentication;
using Microsoft.Extensions.Options;

namespace Har.Service.Security;

/// <summary>
/// Authenticates an API key sent as <c>X-Api-Key: &lt;key&gt;</c> or <c>Authorization: Bearer &lt;key&gt;</c> (also
/// <c>Authorization: ApiKey &lt;key&gt;</c>) against the configured keys, in constant time: the same keys and roles
/// whichever header carries them. A wrong scheme, a malformed header, or both headers at once is a 401 whose
/// problem detail says what was wrong and what is expected.
/// </summary>
public sealed class ApiKeyAuthenticationHandler(
    IOptionsMonitor<AuthenticationSchemeOptions> options,
    ILoggerFactory logger,
    UrlEncoder encoder,
    ApiKeyStore keys)
    : AuthenticationHandler<AuthenticationSchemeOptions>(options, logger, encoder)
{
    public const string SchemeName = "ApiKey";
    public const string Header = "X-Api-Key";
    public const string Expected = "send the API key as 'X-Api-Key: <key>' or 'Authorization: Bearer <key>'";

    protected override Task<AuthenticateResult> HandleAuthenticateAsync()
    {
        var (presented, problem) = Presented(Request.Headers);
        if (problem is not null)
        {
            return Task.FromResult(AuthenticateResult.Fail(problem));
        }

        if (presented is null)
        {
            return Task.FromResult(AuthenticateResult.NoResult());
        }

        var entry = keys.Find(presented);
        if (entry is null)
        {
            return Task.FromResult(AuthenticateResult.Fail("The API key is not valid: it matches none of the service's keys."));
        }

        var claims = new List<Claim> { new(ClaimTypes.Name, entry.Name) };
        claims.AddRange(entry.Roles.Select(r => new Claim(ClaimTypes.Role, r)));
        var principal = new ClaimsPrincipal(new ClaimsIdentity(claims, SchemeName));
        return Task.FromResult(AuthenticateResult.Success(new AuthenticationTicket(principal, SchemeName)));
    }

    /// <summary>The key the request presents (null: none), or what is wrong with its credentials.</summary>
    internal static (string? Key, string? Problem) Presented(IHeaderDictionary headers)
    {
        var apiKey = headers.TryGetValue(Header, out var values) ? values : default;
        var authorization = headers.Authorization;
        if (apiKey.Count > 0 && authorization.Count > 0)
        {
            return (null, $"The request has both an {Header} and an Authorization header; {Expected}, not both.");
        }

        if (apiKey.Count > 1 || authorization.Count > 1)
        {
            return (null, $"The request has {Math.Max(apiKey.Count, authorization.Count)} {(apiKey.Count > 1 ? Header : "Authorization")} headers; {Expected}, once.");
        }

        if (apiKey.Count == 1)
        {
            return string.IsNullOrWhiteSpace(apiKey[0]) ? (null, $"The {Header} header is empty; {Expected}.") : (apiKey[0], null);
        }

        if (authorization.Count == 0)
        {
            return (null, null);
        }

        var value = authorization[0] ?? "";
        var space = value.IndexOf(' ', StringComparison.Ordinal);
        var scheme = space < 0 ? value : value[..space];
        var token = space < 0 ? "" : value[(space + 1)..].Trim(' ');
        if (!scheme.Equals("Bearer", StringComparison.OrdinalIgnoreCase) && !scheme.Equals("ApiKey", StringComparison.OrdinalIgnoreCase))
        {
            var shown = scheme.Length is > 0 and <= 32 && scheme.All(char.IsAsciiLetterOrDigit) ? $"'{scheme}'" : "not a scheme name";
            return (null, $"The Authorization scheme is {shown}; expected Bearer ({Expected}).");
        }

        if (token.Length == 0 || token.Contains(' ', StringComparison.Ordinal))
        {
            return (null, $"The Authorization header is malformed: expected '{scheme} <key>' with one key and no spaces in it ({Expected}).");
        }

        return (token, null);
    }

    protected override async Task HandleChallengeAsync(AuthenticationProperties properties)
    {
        var result = await HandleAuthenticateOnceSafeAsync();
        Response.StatusCode = StatusCodes.Status401Unauthorized;
        Response.Headers.WWWAuthenticate = result.Failure is null
            ? $"Bearer, ApiKey header=\"{Header}\""
            : $"Bearer error=\"invalid_token\", ApiKey header=\"{Header}\"";
        await Results.Problem(
            statusCode: StatusCodes.Status401Unauthorized,
            title: result.Failure is null ? "API key required" : "Invalid credentials",
            detail: result.Failure?.Message ?? $"This operation needs an API key: {Expected}.")
            .ExecuteAsync(Context);
    }
}

/// <summary>The configured API keys, hashed; lookups compare SHA-256 digests in constant time.</summary>
public sealed class ApiKeyStore
{
    private readonly (byte[] Hash, ApiKeyEntry Entry)[] _entries;

    public ApiKeyStore(IEnumerable<ApiKeyEntry> entries)
    {
        _entries = [.. entries.Select(e => (SHA256.HashData(Encoding.UTF8.GetBytes(e.Key)), e))];
    }

    public int Count => _entries.Length;

    /// <summary>The configured keys' names (what the audit log records as actors).</summary>
    public IEnumerable<string> Names => _entries.Select(static e => e.Entry.Name).Where(static n => !string.IsNullOrEmpty(n))!;

    public ApiKeyEntry? Find(string presented)
    {
        var hash = SHA256.HashData(Encoding.UTF8.GetBytes(presented));
        ApiKeyEntry? found = null;
        foreach (var (h, e) in _entries)
        {
            if (CryptographicOperations.FixedTimeEquals(h, hash))
            {
                found = e;
            }
        }

        return found;
    }
}
