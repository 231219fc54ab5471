using System.Collections.Concurrent;
using System.Net;
using Har.Inference;
using Har.Testing;

namespace Har.Fleet.Tests;

/// <summary>
/// Stream affinity through the real nginx of <c>scripts/fleet-local.sh</c> (<c>hash $stream_id consistent</c>): HAPT
/// test-subject sessions sent as device streams, each device's appends answered by one replica whose single buffer
/// completes every window (start frames 0, S, 2S, … without a restart); and a replica that receives a stream it does
/// not own answers correctly from a new buffer without touching the owner's.
/// </summary>
[Collection(FleetDefinition.Name)]
public sealed class StreamAffinityTests(LocalFleet fleet, ITestOutputHelper output)
{
    private const int Devices = 12;
    private const int FramesPerDevice = 2000;
    private const int FramesPerAppend = 500;

    [Fact]
    public async Task Append_HaptDevicesThroughNginx_EachDeviceServedByOneReplicaFromOneBuffer()
    {
        fleet.RequireTools();
        var streams = HaptStreams.Load(TestPaths.RequireSharedData(), Devices, FramesPerDevice);
        Assert.Equal(Devices, streams.Count);
        var card = ModelCard.Load(TestPaths.ChampionModel);
        var ct = TestContext.Current.CancellationToken;
        using var client = fleet.Client(fleet.EntryPoint, withKey: false);

        var answers = new ConcurrentDictionary<string, List<AppendAnswer>>(StringComparer.Ordinal);
        await Parallel.ForEachAsync(streams, new ParallelOptions { MaxDegreeOfParallelism = 6, CancellationToken = ct }, async (stream, token) =>
        {
            var list = answers.GetOrAdd(stream.StreamId, _ => []);
            for (var start = 0; start < stream.Frames; start += FramesPerAppend)
            {
                var frames = Math.Min(FramesPerAppend, stream.Frames - start);
                list.Add(await FleetHttp.AppendAsync(client, stream.StreamId, stream.Samples.AsMemory(start * 6, frames * 6), token));
            }
        });

        var replicasUsed = new HashSet<string>(StringComparer.Ordinal);
        foreach (var stream in streams)
        {
            var list = answers[stream.StreamId];
            Assert.All(list, a => Assert.True(a.Status == HttpStatusCode.OK, $"{stream.StreamId}: {(int)a.Status} {a.Body}"));
            var replicas = list.Select(a => a.Replica).Distinct().ToArray();
            Assert.True(replicas.Length == 1 && replicas[0] is not null, $"{stream.StreamId} was answered by {string.Join(", ", replicas)}; a device's samples must reach one replica");
            replicasUsed.Add(replicas[0]!);

            // One buffer saw every frame: windows at 0, S, 2S, … up to the last whole window, none twice or missing.
            var starts = list.SelectMany(a => a.Windows).Select(w => w.StartFrame).ToArray();
            var expected = Enumerable.Range(0, ((stream.Frames - card.WindowLength) / card.Stride) + 1).Select(k => (long)k * card.Stride).ToArray();
            Assert.Equal(expected, starts);
            Assert.All(list.SelectMany(a => a.Windows), w => Assert.Contains(w.Label, card.Labels));
        }

        output.WriteLine($"{Devices} HAPT devices × {FramesPerDevice} frames through nginx: served by {replicasUsed.Count} replicas ({string.Join(", ", replicasUsed.Order())}), each device by one");
        Assert.True(replicasUsed.Count >= 2, $"all {Devices} devices hashed to one replica ({string.Join(", ", replicasUsed)}): the consistent hash does not spread streams");
    }

    [Fact]
    public async Task Append_StreamSentToAReplicaThatDoesNotOwnIt_AnswersFromANewBufferAndLeavesTheOwnersIntact()
    {
        fleet.RequireTools();
        var stream = HaptStreams.Load(TestPaths.RequireSharedData(), 1, 4000)[0] with { StreamId = "hapt-non-owner-" + Guid.NewGuid().ToString("N")[..8] };
        var card = ModelCard.Load(TestPaths.ChampionModel);
        var ct = TestContext.Current.CancellationToken;
        using var proxy = fleet.Client(fleet.EntryPoint, withKey: false);

        // 1,000 frames through nginx: the owner's buffer completes its windows.
        var first = await FleetHttp.AppendAsync(proxy, stream.StreamId, stream.Samples.AsMemory(0, 1000 * 6), ct);
        Assert.True(first.Status == HttpStatusCode.OK, first.Body);
        var owner = fleet.Replicas.Single(r => $"{r.Host}:{r.Port}" == first.Replica);
        var other = fleet.Replicas.First(r => r != owner);
        using var direct = fleet.Client(other, withKey: false);

        // The next frames sent straight to another replica (as after a proxy change): a new buffer there, so fewer
        // frames than one window complete nothing, and its first window starts at frame 0 of what it received.
        var stray = card.WindowLength / 2;
        var fromOther = await FleetHttp.AppendAsync(direct, stream.StreamId, stream.Samples.AsMemory(1000 * 6, stray * 6), ct);
        Assert.True(fromOther.Status == HttpStatusCode.OK, fromOther.Body);
        Assert.Equal(stray, fromOther.Frames);
        Assert.Empty(fromOther.Windows);
        var more = await FleetHttp.AppendAsync(direct, stream.StreamId, stream.Samples.AsMemory((1000 + stray) * 6, card.WindowLength * 6), ct);
        Assert.True(more.Status == HttpStatusCode.OK, more.Body);
        Assert.Equal(0, more.Windows[0].StartFrame);

        // The owner's buffer is untouched: the next append through nginx goes back to it and continues its numbering.
        var back = await FleetHttp.AppendAsync(proxy, stream.StreamId, stream.Samples.AsMemory(2000 * 6, 1000 * 6), ct);
        Assert.True(back.Status == HttpStatusCode.OK, back.Body);
        Assert.Equal(first.Replica, back.Replica);
        var expectedNext = (long)((((1000 - card.WindowLength) / card.Stride) + 1) * card.Stride);
        Assert.Equal(expectedNext, back.Windows[0].StartFrame);
        output.WriteLine($"owner {first.Replica}; the stray replica {other.Host}:{other.Port} started a new buffer; the owner continued at frame {back.Windows[0].StartFrame}");
    }
}
