using System.Net;
using System.Net.Sockets;
using System.Text;

namespace Relayd.Tests.Diagnostics.Prometheus;

/// <summary>Requests to the metrics endpoint: with <see cref="HttpClient"/> as a scraper would, or as raw bytes for the hostile cases.</summary>
internal static class MetricsHttp
{
    public sealed record Answer(HttpStatusCode Status, string? ContentType, string Body);

    public static async Task<Answer> GetAsync(IPEndPoint endpoint, string path)
    {
        using var client = new HttpClient { Timeout = TimeSpan.FromSeconds(30) };
        using HttpResponseMessage response = await client.GetAsync(new Uri($"http://{endpoint}{path}"), TestContext.Current.CancellationToken);
        string body = await response.Content.ReadAsStringAsync(TestContext.Current.CancellationToken);
        return new Answer(response.StatusCode, response.Content.Headers.ContentType?.ToString(), body);
    }

    /// <summary>GET /metrics, checked to be 200 with the 0.0.4 content type, and parsed strictly.</summary>
    public static async Task<PrometheusScrape> ScrapeAsync(IPEndPoint endpoint)
    {
        Answer answer = await GetAsync(endpoint, "/metrics");
        Assert.Equal(HttpStatusCode.OK, answer.Status);
        Assert.Equal("text/plain; version=0.0.4; charset=utf-8", answer.ContentType);
        return PrometheusTextParser.Parse(answer.Body);
    }

    /// <summary>Polls <paramref name="read"/> until <paramref name="condition"/> holds (or the deadline passes), returning the last scrape.</summary>
    public static async Task<PrometheusScrape> ScrapeUntilAsync(IPEndPoint endpoint, Func<PrometheusScrape, bool> condition, int seconds = 30)
    {
        DateTime deadline = DateTime.UtcNow.AddSeconds(seconds);
        while (true)
        {
            PrometheusScrape scrape = await ScrapeAsync(endpoint);
            if (condition(scrape) || DateTime.UtcNow > deadline)
            {
                return scrape;
            }

            await Task.Delay(50, TestContext.Current.CancellationToken);
        }
    }

    /// <summary>Sends <paramref name="request"/> as is and reads until the endpoint closes; the bytes it answered and how long it took.</summary>
    public static async Task<(string Answer, TimeSpan Elapsed)> RawAsync(IPEndPoint endpoint, byte[] request, int seconds = 60)
    {
        using var socket = new Socket(endpoint.AddressFamily, SocketType.Stream, ProtocolType.Tcp);
        await socket.ConnectAsync(endpoint, TestContext.Current.CancellationToken);
        var started = System.Diagnostics.Stopwatch.StartNew();
        if (request.Length > 0)
        {
            try
            {
                await socket.SendAsync(request, SocketFlags.None, TestContext.Current.CancellationToken);
            }
            catch (SocketException)
            {
                // The endpoint may close before taking all of an oversized request: what it answered is read below.
            }
        }

        using var deadline = CancellationTokenSource.CreateLinkedTokenSource(TestContext.Current.CancellationToken);
        deadline.CancelAfter(TimeSpan.FromSeconds(seconds));
        var answer = new MemoryStream();
        byte[] buffer = new byte[16 * 1024];
        try
        {
            int read;
            while ((read = await socket.ReceiveAsync(buffer, SocketFlags.None, deadline.Token)) > 0)
            {
                answer.Write(buffer, 0, read);
            }
        }
        catch (SocketException)
        {
            // A reset after the answer (the endpoint closed with our unread bytes pending): the answer is what came.
        }

        return (Encoding.ASCII.GetString(answer.ToArray()), started.Elapsed);
    }
}
