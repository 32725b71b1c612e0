using System.Reflection;
using Microsoft.Extensions.Logging;
using Relayd.Diagnostics;

namespace Relayd.Tests.Diagnostics;

/// <summary>
/// Every log line relayd writes has an event id of its own and a name of its own, both taken from one registry
/// (<see cref="EventIds"/>): operators filter the journal by id, and an id reused by mistake would mix two events.
/// </summary>
public sealed class EventIdTests
{
    private const BindingFlags AllMethods = BindingFlags.Public | BindingFlags.NonPublic | BindingFlags.Static | BindingFlags.Instance | BindingFlags.DeclaredOnly;

    /// <summary>Every [LoggerMessage] method in the relayd assembly, with the id and name its events carry.</summary>
    private static readonly LoggedEvent[] Events =
    [
        .. from type in typeof(EventIds).Assembly.GetTypes()
           from method in type.GetMethods(AllMethods)
           let attribute = method.GetCustomAttribute<LoggerMessageAttribute>()
           where attribute is not null
           select new LoggedEvent($"{type.Name}.{method.Name}", attribute.EventId, attribute.EventName ?? method.Name),
    ];

    /// <summary>The registry: each public constant's name and id.</summary>
    private static readonly (string Name, int Id)[] Registry =
    [
        .. from field in typeof(EventIds).GetFields(BindingFlags.Public | BindingFlags.Static)
           where field.IsLiteral && field.FieldType == typeof(int)
           select (field.Name, (int)field.GetRawConstantValue()!),
    ];

    [Fact]
    public void The_relay_logs_through_LoggerMessage_methods_the_test_can_see()
    {
        // Guards the reflection below: an empty list would let every other test here pass.
        Assert.True(Events.Length >= 50, $"found only {Events.Length} [LoggerMessage] methods");
        Assert.Contains(Events, e => e.Method == "RelayLog.Listening" && e.Id == 100);
    }

    [Fact]
    public void No_two_events_share_an_id()
    {
        string[] shared = [.. Events.GroupBy(e => e.Id).Where(g => g.Count() > 1).Select(g => $"{g.Key}: {string.Join(", ", g.Select(e => e.Method))}")];

        Assert.True(shared.Length == 0, "event ids used by more than one [LoggerMessage]: " + string.Join("; ", shared));
    }

    [Fact]
    public void No_two_events_share_a_name()
    {
        string[] shared = [.. Events.GroupBy(e => e.Name).Where(g => g.Count() > 1).Select(g => $"{g.Key}: {string.Join(", ", g.Select(e => $"{e.Method} ({e.Id})"))}")];

        Assert.True(shared.Length == 0, "event names used by more than one [LoggerMessage] (set EventName on one): " + string.Join("; ", shared));
    }

    [Fact]
    public void Every_event_takes_its_id_from_the_registry_under_its_own_name()
    {
        Dictionary<int, string[]> byId = Registry.GroupBy(r => r.Id).ToDictionary(g => g.Key, g => g.Select(r => r.Name).ToArray());
        string[] wrong =
        [
            .. from e in Events
               let names = byId.GetValueOrDefault(e.Id, [])
               where !names.Contains(e.Name)
               select names.Length == 0
                   ? $"{e.Method}: id {e.Id} is not in EventIds"
                   : $"{e.Method}: id {e.Id} is EventIds.{string.Join("/", names)}, not EventIds.{e.Name}",
        ];

        Assert.True(wrong.Length == 0, string.Join("; ", wrong));
    }

    [Fact]
    public void The_registry_assigns_each_id_once_and_every_id_it_assigns_is_logged()
    {
        string[] twice = [.. Registry.GroupBy(r => r.Id).Where(g => g.Count() > 1).Select(g => $"{g.Key}: {string.Join(", ", g.Select(r => r.Name))}")];
        string[] unused = [.. Registry.Where(r => !Events.Any(e => e.Id == r.Id)).Select(r => $"{r.Name} = {r.Id}")];

        Assert.True(twice.Length == 0, "ids assigned to more than one name in EventIds: " + string.Join("; ", twice));
        Assert.True(unused.Length == 0, "ids in EventIds that no [LoggerMessage] uses: " + string.Join("; ", unused));
    }

    private sealed record LoggedEvent(string Method, int Id, string Name);
}
