using Har.Inference;

var builder = WebApplication.CreateSlimBuilder(args);
builder.Logging.AddJsonConsole();

var modelsDir = builder.Configuration["Har:ModelsDirectory"] ?? Path.Combine(AppContext.BaseDirectory, "models");
var cards = Directory.Exists(modelsDir)
    ? Directory.GetFiles(modelsDir, "*.onnx").Order(StringComparer.Ordinal).Select(ModelCard.Load).ToArray()
    : [];

var app = builder.Build();

app.MapGet("/health", () => Results.Ok(new { status = "healthy" }));
app.MapGet("/v1/models", () => Results.Ok(cards.Select(c => new
{
    name = c.ModelName,
    version = c.ModelVersion,
    labels = c.Labels,
    window_length = c.WindowLength,
    stride = c.Stride,
    sample_rate_hz = c.SampleRateHz,
    parameters = c.Parameters,
    metrics = new { accuracy = c.Metrics.Accuracy, macro_f1 = c.Metrics.MacroF1, n_windows = c.Metrics.Windows },
})));

app.Run();
