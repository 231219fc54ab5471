using Microsoft.Extensions.Options;

namespace Har.Inference.Models;

/// <summary>Validates <see cref="HarModelOptions"/> (source-generated from its data annotations).</summary>
[OptionsValidator]
internal sealed partial class HarModelOptionsValidator : IValidateOptions<HarModelOptions>
{
}

/// <summary>Validates <see cref="StreamWindowerOptions"/> (source-generated from its data annotations).</summary>
[OptionsValidator]
internal sealed partial class StreamWindowerOptionsValidator : IValidateOptions<StreamWindowerOptions>
{
}
