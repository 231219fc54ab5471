using System.Collections.Concurrent;
using System.Net;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace Har.Service.Tests.Webhooks;

/// <summary>A real Kestrel server on 127.0.0.1 that records every webhook call and answers with the status <see cref="Answer"/> gives.</summary>
internal sealed class WebhookReceiver : IAsyncDisposable
{
    private readonly WebApplication _app;

    private WebhookReceiver(WebApplication app) => _app = app;

    public ConcurrentQueue<Call> Calls { get; } = new();

    /// <summary>The status to answer a call to a path with (200 unless set).</summary>
    public Func<string, int> Answer { get; set; } = _ => 200;

    /// <summary>How long to wait before answering a call to a path (none unless set).</summary>
    public Func<string, TimeSpan> Delay { get; set; } = _ => TimeSpan.Zero;

    public Uri BaseAddress { get; private set; } = null!;

    public static async Task<WebhookReceiver> StartAsync()
    {
        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        builder.WebHost.UseKestrel(o => o.Listen(IPAddress.Loopback, 0));
        var app = builder.Build();
        var receiver = new WebhookReceiver(app);
        app.MapPost("/{hook}", async (string hook, HttpRequest request) =>
        {
            using var body = new MemoryStream();
            await request.Body.CopyToAsync(body);
            var status = receiver.Answer(hook);
            if (receiver.Delay(hook) is { } delay && delay > TimeSpan.Zero)
            {
                receiver.Calls.Enqueue(new Call(hook, body.ToArray(), request.Headers["X-Har-Signature"].ToString(), request.Headers["X-Har-Idempotency-Key"].ToString(), request.ContentType ?? "", 0));
                await Task.Delay(delay, request.HttpContext.RequestAborted).ContinueWith(_ => { }, TaskScheduler.Default);
                return Results.StatusCode(status);
            }

            receiver.Calls.Enqueue(new Call(hook, body.ToArray(), request.Headers["X-Har-Signature"].ToString(), request.Headers["X-Har-Idempotency-Key"].ToString(), request.ContentType ?? "", status));
            return Results.StatusCode(status);
        });
        await app.StartAsync();
        var address = app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First();
        receiver.BaseAddress = new Uri(address);
        return receiver;
    }

    public async ValueTask DisposeAsync()
    {
        await _app.StopAsync();
        await _app.DisposeAsync();
    }

    internal sealed record Call(string Hook, byte[] Body, string Signature, string IdempotencyKey, string ContentType, int Status);
}
