using System.Collections.Concurrent;
using Microsoft.Extensions.Logging;

namespace Relayd.Diagnostics.Journal;

/// <summary>
/// Logs through journald's native protocol, one datagram per entry with relayd's structured fields
/// (<see cref="JournalLogger"/>); what <c>RelayHost</c> uses instead of the console when stderr is the journal.
/// </summary>
[ProviderAlias("Journal")]
internal sealed class JournalLoggerProvider : ILoggerProvider
{
    private readonly JournalSink _sink;
    private readonly ConcurrentDictionary<string, JournalLogger> _loggers = new(StringComparer.Ordinal);

    public JournalLoggerProvider(JournalOptions options, TextWriter? fallback = null) => _sink = new JournalSink(options, fallback);

    /// <summary>Entries the journal did not take (see <see cref="JournalSink.NotSent"/>).</summary>
    public long NotSent => _sink.NotSent;

    public ILogger CreateLogger(string categoryName) => _loggers.GetOrAdd(categoryName, static (name, sink) => new JournalLogger(name, sink), _sink);

    public void Dispose() => _sink.Dispose();
}
