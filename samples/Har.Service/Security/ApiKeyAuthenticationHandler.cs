using System.Security.Claims;
using System.Security.Cryptography;
using System.Text;
using System.Text.Encodings.Web;
using Microsoft.AspNetCore.Authentication;
using Microsoft.Extensions.Options;

namespace Har.Service.Security;

/// <summary>Authenticates <c>X-Api-Key</c> (or <c>Authorization: ApiKey …</c>) against the configured keys, in constant time.</summary>
public sealed class ApiKeyAuthenticationHandler(
    IOptionsMonitor<AuthenticationSchemeOptions> options,
    ILoggerFactory logger,
    UrlEncoder encoder,
    ApiKeyStore keys)
    : AuthenticationHandler<AuthenticationSchemeOptions>(options, logger, encoder)
{
    public const string SchemeName = "ApiKey";
    public const string Header = "X-Api-Key";

    protected override Task<AuthenticateResult> HandleAuthenticateAsync()
    {
        string? presented = null;
        if (Request.Headers.TryGetValue(Header, out var values))
        {
            presented = values.ToString();
        }
        else if (Request.Headers.Authorization.ToString() is { } auth && auth.StartsWith("ApiKey ", StringComparison.OrdinalIgnoreCase))
        {
            presented = auth["ApiKey ".Length..].Trim();
        }

        if (string.IsNullOrEmpty(presented))
        {
            return Task.FromResult(AuthenticateResult.NoResult());
        }

        var entry = keys.Find(presented);
        if (entry is null)
        {
            return Task.FromResult(AuthenticateResult.Fail("The API key is not valid."));
        }

        var claims = new List<Claim> { new(ClaimTypes.Name, entry.Name) };
        claims.AddRange(entry.Roles.Select(r => new Claim(ClaimTypes.Role, r)));
        var principal = new ClaimsPrincipal(new ClaimsIdentity(claims, SchemeName));
        return Task.FromResult(AuthenticateResult.Success(new AuthenticationTicket(principal, SchemeName)));
    }

    protected override Task HandleChallengeAsync(AuthenticationProperties properties)
    {
        Response.StatusCode = StatusCodes.Status401Unauthorized;
        Response.Headers.WWWAuthenticate = $"ApiKey header=\"{Header}\"";
        return Task.CompletedTask;
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
