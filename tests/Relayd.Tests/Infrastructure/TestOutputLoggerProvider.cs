using Microsoft.Extensions.Logging;

namespace Relayd.Tests.Infrastructure;

/// <summary>Sends relay logs to xunit's test output, so a failing test shows what the relay saw.</summary>
internal sealed class TestOutputLoggerProvider : ILoggerProvider
{
    public System.Collections.Concurrent.ConcurrentQueue<string> Lines { get; } = new();

    public ILogger CreateLogger(string categoryName) => new TestOutputLogger(Lines);

    public void Dispose()
    {
    }

    private sealed class TestOutputLogger(System.Collections.Concurrent.ConcurrentQueue<string> lines) : ILogger
    {
        public IDisposable? BeginScope<TState>(TState state) where TState : notnull => null;

        public bool IsEnabled(LogLevel logLevel) => true;

        public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
        {
            string line = $"[relay {logLevel} {eventId.Id}] {formatter(state, exception)}{(exception is null ? "" : " " + exception.Message)}";
            lines.Enqueue(line);
            try
            {
                TestContext.Current.TestOutputHelper?.WriteLine(line);
            }
            catch (InvalidOperationException)
            {
                // No test is running (output after the test ended).
            }
        }
    }
}
