#!/usr/bin/env python3
"""Exports the tiny ONNX test models (with Har model cards) used by Har.Inference.Tests.

Run from the repository root with torch 1.13 and onnx 1.12:

    /usr/bin/python3 tests/Har.Inference.Tests/Fixtures/make_fixtures.py              # every fixture
    /usr/bin/python3 tests/Har.Inference.Tests/Fixtures/make_fixtures.py tiny-context-1.0.0.onnx   # only these

The models are deterministic (seeded), a few kilobytes each, and share the real models' contract:
input "input" float32 [N, window_length + context_frames, channels] (time-major, interleaved channels;
context_frames is 0 except for tiny-context), output "output" float32 [N, labels]. The "bad-*" files carry
deliberately broken cards or shapes for the load-time validation tests; each one breaks exactly one thing.
Rerunning the script writes byte-identical files.

tiny-context-1.0.0.onnx is analytic (no random weights), so that a test can tell from its outputs which
samples the runtime fed it. Card: har.window_length 200, har.stride 100, har.context_frames 200,
har.output "probabilities", the MEAN / STD below; input [N, 400, 6] = 200 context frames (input rows 0..199)
followed by the 200-frame labelled window (rows 200..399). With u[t] = input[n, t, 0], the normalised ax
((ax - 0.8) / 0.4) of row t, its output is softmax(z) over the 12 classes with

    z[0] = 10 * mean(u[0..199])     (mean over the 200 context frames)
    z[1] = 10 * mean(u[200..399])   (mean over the 200 labelled frames)
    z[2] = 10 * u[0]                (the earliest context frame)
    z[3] = 10 * u[200]              (the first labelled frame)
    z[4..11] = 0

so z[i] = ln(p[i] / p[11]) for every i. For window k of a stream of ax values a[0..], the runtime must feed
rows t = 0..399 with a[max(0, 100 k - 200 + t)] (frames before the stream are copies of its first frame).
"""

import json
import os
import sys

import onnx
import torch
import torch.nn as nn

HERE = os.path.dirname(os.path.abspath(__file__))
LABELS = ["WALKING", "WALKING_UPSTAIRS", "WALKING_DOWNSTAIRS", "SITTING", "STANDING", "LAYING",
          "STAND_TO_SIT", "SIT_TO_STAND", "SIT_TO_LIE", "LIE_TO_SIT", "STAND_TO_LIE", "LIE_TO_STAND"]
CHANNELS = ["ax", "ay", "az", "gx", "gy", "gz"]
MEAN = [0.8, 0.05, -0.1, 0.0, 0.01, -0.02]
STD = [0.4, 0.3, 0.35, 0.5, 0.45, 0.3]


class Tiny(nn.Module):
    """Conv1d(channels -> 8, k=5) + ReLU + global mean/max pooling + Linear(16 -> classes)."""

    def __init__(self, channels, classes, scale=1.0):
        super().__init__()
        self.conv = nn.Conv1d(channels, 8, 5, padding=2)
        self.head = nn.Linear(16, classes)
        self.scale = scale

    def forward(self, x):  # [N, T, C]
        h = torch.relu(self.conv(x.transpose(1, 2)))
        z = torch.cat([h.mean(dim=2), h.amax(dim=2)], dim=1)
        return self.head(z) * self.scale


def card(name, version, output, params, window=200, stride=100, labels=LABELS, channels=CHANNELS,
         mean=MEAN, std=STD):
    return {
        "har.model_name": name,
        "har.model_version": version,
        "har.labels": json.dumps(labels),
        "har.window_length": str(window),
        "har.stride": str(stride),
        "har.sample_rate_hz": "50",
        "har.channels": json.dumps(channels),
        "har.normalization.mean": json.dumps(mean),
        "har.normalization.std": json.dumps(std),
        "har.output": output,
        "har.parameters": str(params),
        "har.training_data": json.dumps({"dataset": "synthetic", "note": "test fixture, random weights"}),
        "har.metrics": json.dumps({"accuracy": 0.5, "macro_f1": 0.4, "n_windows": 100}),
        "har.trained_at": "2026-01-15T10:30:00Z",
        "har.training_command": "python3 tests/Har.Inference.Tests/Fixtures/make_fixtures.py",
    }


ONLY = set()  # file names given on the command line: write only these (empty = every fixture)


def export(file, model, meta, window=200, channels=6, rank3=True, fixed_batch=None, channels_first=False):
    if ONLY and file not in ONLY:
        return
    model.eval()
    n = fixed_batch or 2
    if not rank3:
        x = torch.zeros(n, window * channels)
    elif channels_first:
        x = torch.zeros(n, channels, window)
    else:
        x = torch.zeros(n, window, channels)
    path = os.path.join(HERE, file)
    # Without dynamic_axes (fixed_batch) the batch axis is fixed at the dummy input's, as torch.onnx.export writes it
    # by default.
    dynamic = None if fixed_batch else {"input": {0: "N"}, "output": {0: "N"}}
    torch.onnx.export(model, x, path, input_names=["input"], output_names=["output"],
                      dynamic_axes=dynamic, opset_version=13)
    m = onnx.load(path)
    del m.metadata_props[:]
    for k, v in meta.items():
        m.metadata_props.append(onnx.StringStringEntryProto(key=k, value=v))
    onnx.checker.check_model(m)
    onnx.save_model(m, path)
    print("%-36s %6d bytes" % (file, os.path.getsize(path)))


class Flat(nn.Module):
    def __init__(self):
        super().__init__()
        self.inner = Tiny(6, 12)

    def forward(self, x):  # [N, 1200]
        return self.inner(x.reshape(-1, 200, 6))


class ChannelsFirst(nn.Module):
    """Tiny reading [N, C, T] (channels before time), as a network exported without its transpose would."""

    def __init__(self):
        super().__init__()
        self.inner = Tiny(6, 12)

    def forward(self, x):  # [N, 6, 200]
        return self.inner(x.transpose(1, 2))


def params(model):
    return sum(p.numel() for p in model.parameters())


class ContextProbe(nn.Module):
    """The analytic tiny-context model (formula in the module docstring): features
    [mean(u[0..199]), mean(u[200..399]), u[0], u[200]] of u = input[:, :, 0], a fixed Linear(4 -> 12) without bias
    whose weight is 10 on the diagonal of its first four rows and 0 elsewhere, softmax."""

    def __init__(self, context=200, window=200, classes=12):
        super().__init__()
        self.context = context
        self.head = nn.Linear(4, classes, bias=False)
        with torch.no_grad():
            self.head.weight.zero_()
            for i in range(4):
                self.head.weight[i, i] = 10.0

    def forward(self, x):  # [N, context + window, 6], normalised
        u = x[:, :, 0]
        c = self.context
        f = torch.stack([u[:, :c].mean(dim=1), u[:, c:].mean(dim=1), u[:, 0], u[:, c]], dim=1)
        return torch.softmax(self.head(f), dim=1)


def export_slow_loop(file, trips, on_input=False):
    """A graph with a valid card whose every run first counts a Loop to `trips` (10^15: it never finishes), then
    returns softmax(mean over time of the input @ W): what a runaway candidate looks like to the runtime. With
    on_input, the count is relu(max(input) - 10) * `trips` instead: 0 for every window within 10 standard deviations
    of the card's mean (the load's probe windows, realistic data), practically endless for one holding a value beyond."""
    if ONLY and file not in ONLY:
        return
    import numpy as np
    from onnx import helper, numpy_helper, TensorProto
    body = helper.make_graph(
        [helper.make_node("Identity", ["cond_in"], ["cond_out"]), helper.make_node("Add", ["v_in", "one"], ["v_out"])],
        "body",
        [helper.make_tensor_value_info("iter", TensorProto.INT64, []),
         helper.make_tensor_value_info("cond_in", TensorProto.BOOL, []),
         helper.make_tensor_value_info("v_in", TensorProto.FLOAT, [1])],
        [helper.make_tensor_value_info("cond_out", TensorProto.BOOL, []),
         helper.make_tensor_value_info("v_out", TensorProto.FLOAT, [1])],
        [numpy_helper.from_array(np.array([0.0], dtype=np.float32), "one")])
    rng = np.random.default_rng(11)
    count = []
    inits = [numpy_helper.from_array(np.array(trips, dtype=np.int64), "M")]
    if on_input:
        count = [helper.make_node("ReduceMax", ["input"], ["peak"], keepdims=0),
                 helper.make_node("Sub", ["peak", "ten"], ["excess"]),
                 helper.make_node("Relu", ["excess"], ["over"]),
                 helper.make_node("Mul", ["over", "scale"], ["scaled"]),
                 helper.make_node("Cast", ["scaled"], ["M"], to=TensorProto.INT64)]
        inits = [numpy_helper.from_array(np.array(10.0, dtype=np.float32), "ten"),
                 numpy_helper.from_array(np.array(float(trips), dtype=np.float32), "scale")]
    graph = helper.make_graph(
        count + [helper.make_node("Loop", ["M", "cond", "v0"], ["counted"], body=body),
         helper.make_node("ReduceMean", ["input"], ["mean"], axes=[1], keepdims=0),
         helper.make_node("MatMul", ["mean", "W"], ["z"]),
         helper.make_node("Add", ["z", "counted"], ["logits"]),
         helper.make_node("Softmax", ["logits"], ["output"], axis=1)],
        "slow",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["N", 200, 6])],
        [helper.make_tensor_value_info("output", TensorProto.FLOAT, ["N", 12])],
        inits + [numpy_helper.from_array(np.array(True), "cond"),
         numpy_helper.from_array(np.array([0.0], dtype=np.float32), "v0"),
         numpy_helper.from_array(rng.standard_normal((6, 12)).astype(np.float32), "W")])
    m = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    m.ir_version = 7
    for k, v in card(file.rsplit("-", 1)[0], "1.0.0", "probabilities", 72).items():
        m.metadata_props.append(onnx.StringStringEntryProto(key=k, value=v))
    onnx.checker.check_model(m)
    path = os.path.join(HERE, file)
    onnx.save_model(m, path)
    print("%-36s %6d bytes" % (file, os.path.getsize(path)))


def main():
    torch.manual_seed(7)
    probs = nn.Sequential(Tiny(6, 12), nn.Softmax(dim=1))
    export("tiny-probs-1.0.0.onnx", probs, card("tiny-probs", "1.0.0", "probabilities", params(probs)))

    torch.manual_seed(8)
    logits = Tiny(6, 12)
    export("tiny-logits-1.1.0.onnx", logits, card("tiny-logits", "1.1.0", "logits", params(logits)))

    # Logits far beyond float32 exp's range (|z| up to ~1e4): a naive softmax overflows to NaN.
    torch.manual_seed(8)
    huge = Tiny(6, 12, scale=2000.0)
    export("tiny-huge-logits-1.2.0.onnx", huge, card("tiny-huge-logits", "1.2.0", "logits", params(huge)))

    # A short window (20 samples, stride 10) for fast windowing tests against a real session.
    torch.manual_seed(9)
    short = Tiny(6, 12)
    export("tiny-short-1.0.0.onnx", short, card("tiny-short", "1.0.0", "logits", params(short), window=20, stride=10),
           window=20)

    # Broken cards and shapes: each breaks exactly one thing.
    torch.manual_seed(10)
    m = Tiny(6, 12)
    export("bad-window-length.onnx", m, card("bad", "1.0.0", "logits", params(m), window=128))
    export("bad-label-count.onnx", m, card("bad", "1.0.0", "logits", params(m), labels=LABELS[:10]))
    export("bad-zero-std.onnx", m, card("bad", "1.0.0", "logits", params(m), std=[0.4, 0.3, 0.0, 0.5, 0.45, 0.3]))
    missing = card("bad", "1.0.0", "logits", params(m))
    del missing["har.normalization.mean"]
    export("bad-missing-mean.onnx", m, missing)
    m3 = Tiny(3, 12)
    export("bad-channel-count.onnx", m3, card("bad", "1.0.0", "logits", params(m3)), channels=3)
    flat = Flat()
    export("bad-rank.onnx", flat, card("bad", "1.0.0", "logits", params(flat)), rank3=False)

    # The card's har.output against the graph's output (checked on probe windows at load): logits under a card that
    # says probabilities, and a softmax under a card that says logits.
    export("bad-output-logits-as-probabilities.onnx", m, card("bad", "1.0.0", "probabilities", params(m)))
    soft = nn.Sequential(m, nn.Softmax(dim=1))
    export("bad-output-probabilities-as-logits.onnx", soft, card("bad", "1.0.0", "logits", params(soft)))
    first = ChannelsFirst()
    export("bad-channels-first.onnx", first, card("bad", "1.0.0", "logits", params(first)), channels_first=True)

    # tiny-probs' weights (seed 7) exported without dynamic axes: the batch axis fixed at 1 and at 4 (served with every
    # run holding exactly that many windows). Their outputs equal tiny-probs' for the same windows.
    torch.manual_seed(7)
    fixed = nn.Sequential(Tiny(6, 12), nn.Softmax(dim=1))
    export("tiny-fixed1-1.0.0.onnx", fixed, card("tiny-fixed1", "1.0.0", "probabilities", params(fixed)), fixed_batch=1)
    export("tiny-fixed4-1.0.0.onnx", fixed, card("tiny-fixed4", "1.0.0", "probabilities", params(fixed)), fixed_batch=4)

    # A runaway graph (a Loop of 10^15 iterations before its output): stopped by HarModelOptions.RunTimeout.
    export_slow_loop("slow-loop-1.0.0.onnx", 10 ** 15)
    export_slow_loop("slow-on-input-1.0.0.onnx", 10 ** 12, on_input=True)

    # Context: the graph reads the 200 frames before each 200-frame window (input [N, 400, 6]). Analytic, no random
    # weights; softmax(z) with z[0] = 10 * mean(u[0..199]) (the context frames), z[1] = 10 * mean(u[200..399]) (the
    # labelled frames), z[2] = 10 * u[0], z[3] = 10 * u[200], z[4..11] = 0, u = input[n, :, 0] (normalised ax); see
    # the module docstring.
    probe = ContextProbe(context=200, window=200)
    meta = card("tiny-context", "1.0.0", "probabilities", params(probe))
    meta["har.context_frames"] = "200"
    meta["har.training_data"] = json.dumps({
        "dataset": "synthetic",
        "note": "test fixture, analytic weights: softmax(z), z[0] = 10 * mean of input[n, 0..199, 0] (context), "
                "z[1] = 10 * mean of input[n, 200..399, 0] (labelled window), z[2] = 10 * input[n, 0, 0], "
                "z[3] = 10 * input[n, 200, 0], z[4..11] = 0"})
    export("tiny-context-1.0.0.onnx", probe, meta, window=400)

    # The plain 200-frame graph with a card that says it also reads 100 context frames (input 300): refused at load.
    bad_context = card("bad", "1.0.0", "logits", params(m))
    bad_context["har.context_frames"] = "100"
    export("bad-context-frames.onnx", m, bad_context)


if __name__ == "__main__":
    ONLY.update(sys.argv[1:])
    main()
