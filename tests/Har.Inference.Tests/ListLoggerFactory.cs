using Microsoft.Extensions.Logging;

namespace Har.Inference.Tests;

/// <summary>Keeps every message logged through it, with its level.</summary>
internal sealed class ListLoggerFactory : ILoggerFactory, ILogger
{
    private readonly List<(LogLevel Level, string Message)> _entries = [];

    public IReadOnlyList<string> Messages
    {
        get
        {
            lock (_entries)
            {
                return [.. _entries.Select(e => e.Message)];
            }
        }
    }

    public IReadOnlyList<(LogLevel Level, string Message)> Entries
    {
        get
        {
            lock (_entries)
            {
                return [.. _entries];
            }
        }
    }

    public ILogger CreateLogger(string categoryName) => this;

    public void AddProvider(ILoggerProvider provider)
    {
    }

    public IDisposable? BeginScope<TState>(TState state)
        where TState : notnull => null;

    public bool IsEnabled(LogLevel logLevel) => true;

    public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
    {
        lock (_entries)
        {
            _entries.Add((logLevel, formatter(state, exception)));
        }
    }

    public void Dispose()
    {
    }
}
