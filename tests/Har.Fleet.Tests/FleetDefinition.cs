namespace Har.Fleet.Tests;

/// <summary>The tests share one fleet (starting it costs most of the time) and run one after another on it; each leaves it whole.</summary>
[CollectionDefinition(Name)]
public sealed class FleetDefinition : ICollectionFixture<LocalFleet>
{
    public const string Name = "fleet";
}
