#!/usr/bin/env python3
"""Independent check of an exported HAR .onnx file without onnxruntime.

Runs the ONNX graph with a small numpy interpreter (only the operators the HAR exports use) on
windows of the UCI HAPT test subjects, compares the result with the ONNX-declared card, and prints
accuracy / macro-F1 computed from the ONNX outputs. With --metrics it also checks that these figures
equal the ones recorded in the card (har.metrics).

    python3 tools/training/onnx_numpy_check.py models/har-cnn-bilstm-1.0.0.onnx [--limit 300]

Requirements: numpy, onnx (torch is imported by train.py but not used to run the graph).
"""

import argparse
import json
import os
import sys

import numpy as np
import onnx
from onnx import numpy_helper

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import train  # noqa: E402  (data loading / windowing / metrics of the training script, no torch use)


def _attrs(node):
    return {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}


def _sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def _conv1d(x, w, b, pads, strides, dilations, group):
    assert group == 1 and len(pads) == 2 and strides == [1] and dilations == [1]
    n, c, t = x.shape
    o, _, k = w.shape
    xp = np.pad(x, ((0, 0), (0, 0), (pads[0], pads[1])))
    tout = t + pads[0] + pads[1] - k + 1
    cols = np.stack([xp[:, :, j:j + tout] for j in range(k)], axis=-1)  # [n, c, tout, k]
    y = np.einsum("nctk,ock->not", cols, w, optimize=True)
    return y + (b[None, :, None] if b is not None else 0)


def _lstm(x, w, r, b, h0, c0, hidden, direction):
    # ONNX gate order: i, o, f, c;  x [T, B, I], w [D, 4H, I], r [D, 4H, H], b [D, 8H]
    t_len, batch, _ = x.shape
    dirs = 2 if direction == "bidirectional" else 1
    y = np.zeros((t_len, dirs, batch, hidden), dtype=np.float64)
    hs, cs = [], []
    for d in range(dirs):
        h = np.zeros((batch, hidden)) if h0 is None else h0[d].astype(np.float64)
        c = np.zeros((batch, hidden)) if c0 is None else c0[d].astype(np.float64)
        bias = np.zeros(8 * hidden) if b is None else b[d]
        steps = range(t_len) if (d == 0 and direction != "reverse") else range(t_len - 1, -1, -1)
        for t in steps:
            g = x[t] @ w[d].T + h @ r[d].T + bias[:4 * hidden] + bias[4 * hidden:]
            i, o, f, cc = np.split(g, 4, axis=1)
            c = _sigmoid(f) * c + _sigmoid(i) * np.tanh(cc)
            h = _sigmoid(o) * np.tanh(c)
            y[t, d] = h
        hs.append(h); cs.append(c)
    return y, np.stack(hs), np.stack(cs)


def run(model, x):
    env = {i.name: numpy_helper.to_array(i).astype(np.float64) if numpy_helper.to_array(i).dtype.kind == "f"
           else numpy_helper.to_array(i) for i in model.graph.initializer}
    env[model.graph.input[0].name] = x.astype(np.float64)
    for node in model.graph.node:
        a = _attrs(node)
        ins = [env[n] if n else None for n in node.input]
        op = node.op_type
        if op == "Constant":
            out = [numpy_helper.to_array(a["value"])]
        elif op == "Transpose":
            out = [np.transpose(ins[0], a["perm"])]
        elif op == "Conv":
            k = ins[1].shape[2]
            out = [_conv1d(ins[0], ins[1], ins[2] if len(ins) > 2 else None, a.get("pads", [k // 2, k // 2]),
                           a.get("strides", [1]), a.get("dilations", [1]), a.get("group", 1))]
        elif op == "Relu":
            out = [np.maximum(ins[0], 0)]
        elif op == "MaxPool":
            assert a["kernel_shape"] == [2] and a.get("strides", [2]) == [2] and not any(a.get("pads", [0, 0]))
            xx = ins[0]
            tt = xx.shape[2] // 2
            out = [xx[:, :, :2 * tt].reshape(xx.shape[0], xx.shape[1], tt, 2).max(axis=3)]
        elif op == "Shape":
            out = [np.array(ins[0].shape, dtype=np.int64)]
        elif op == "Gather":
            out = [np.take(ins[0], ins[1], axis=a.get("axis", 0))]
        elif op == "Unsqueeze":
            out = [np.expand_dims(ins[0], tuple(int(v) for v in ins[1]))]
        elif op == "Concat":
            out = [np.concatenate([np.atleast_1d(v) for v in ins], axis=a["axis"])]
        elif op == "ConstantOfShape":
            val = numpy_helper.to_array(a["value"]) if "value" in a else np.zeros(1)
            out = [np.full(tuple(int(v) for v in ins[0]), val.reshape(-1)[0], dtype=np.float64)]
        elif op == "LSTM":
            ins += [None] * (7 - len(ins))
            assert ins[4] is None, "sequence_lens not supported"
            out = list(_lstm(ins[0], ins[1], ins[2], ins[3], ins[5], ins[6], a["hidden_size"],
                             a.get("direction", b"forward").decode()))
        elif op == "Reshape":
            shape = [int(v) for v in ins[1]]
            shape = [ins[0].shape[i] if v == 0 else v for i, v in enumerate(shape)]
            out = [ins[0].reshape(shape)]
        elif op in ("ReduceMean", "ReduceMax"):
            f = np.mean if op == "ReduceMean" else np.max
            out = [f(ins[0], axis=tuple(a["axes"]), keepdims=bool(a.get("keepdims", 1)))]
        elif op == "Gemm":
            aa = ins[0].T if a.get("transA", 0) else ins[0]
            bb = ins[1].T if a.get("transB", 0) else ins[1]
            out = [a.get("alpha", 1.0) * aa @ bb + (a.get("beta", 1.0) * ins[2] if len(ins) > 2 else 0)]
        elif op == "Softmax":
            z = ins[0] - ins[0].max(axis=a.get("axis", -1), keepdims=True)
            e = np.exp(z)
            out = [e / e.sum(axis=a.get("axis", -1), keepdims=True)]
        else:
            raise SystemExit("operator %s not supported by this checker" % op)
        for name, v in zip(node.output, out):
            if name:
                env[name] = v
    return env[model.graph.output[0].name]


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("onnx_path")
    p.add_argument("--data", default=train.DEFAULT_DATA)
    p.add_argument("--limit", type=int, default=0, help="only the first N test windows (0 = all)")
    p.add_argument("--metrics", action="store_true",
                   help="require accuracy / macro-F1 to equal the card's har.metrics (needs all windows)")
    args = p.parse_args()

    model = onnx.load(args.onnx_path)
    onnx.checker.check_model(model, full_check=True)
    card = {e.key: e.value for e in model.metadata_props}
    mean = np.array(json.loads(card["har.normalization.mean"]), dtype=np.float32)
    std = np.array(json.loads(card["har.normalization.std"]), dtype=np.float32)
    labels = json.loads(card["har.labels"])
    wl = int(card["har.window_length"])
    assert wl == train.WINDOW_LENGTH and int(card["har.stride"]) == train.STRIDE
    print("card:", card["har.model_name"], card["har.model_version"], "output =", card["har.output"])

    data = train.load_data(args.data)
    assert data["sha256"] == json.loads(card["har.training_data"])["sha256"], "data file differs from training"
    w, _ = train.make_windows(data)
    test_subjects = json.loads(card["har.training_data"])["test_subjects"]
    wt = train.subset(w, np.isin(w["subject"], test_subjects))
    if args.limit:
        wt = train.subset(wt, np.arange(len(wt["y"])) < args.limit)
    x = ((train.gather(data["x"], wt["start"]) - mean) / std).astype(np.float32)

    outs = []
    for n in (1, 3):  # two batch sizes, to exercise the dynamic batch axis
        outs.append(np.concatenate([run(model, x[i:i + n]) for i in range(0, min(len(x), 6), n)]))
    assert outs[0].shape == (min(len(x), 6), len(labels))
    print("batch 1 vs batch 3: max |diff| = %.3g" % np.abs(outs[0] - outs[1]).max())
    assert np.abs(outs[0] - outs[1]).max() < 1e-9
    y = np.concatenate([run(model, x[i:i + 256]) for i in range(0, len(x), 256)])
    if card["har.output"] == "probabilities":
        print("probabilities: min %.3g, row sums in [%.9f, %.9f]" % (y.min(), y.sum(1).min(), y.sum(1).max()))
        assert y.min() >= 0 and np.allclose(y.sum(1), 1.0, atol=1e-6)
    m = train.classification_metrics(wt["y"], y.argmax(1), labels)
    print("numpy execution of the ONNX graph on %d test windows: accuracy %.6f macro_f1 %.6f" % (
        m["n_windows"], m["accuracy"], m["macro_f1"]))
    if args.metrics:
        cm = json.loads(card["har.metrics"])
        print("card har.metrics: accuracy %.6f macro_f1 %.6f n_windows %d" % (cm["accuracy"], cm["macro_f1"], cm["n_windows"]))
        assert cm["n_windows"] == m["n_windows"]
        assert cm["accuracy"] == m["accuracy"] and cm["macro_f1"] == m["macro_f1"], "card metrics differ"
        print("OK: the ONNX graph reproduces the card's test metrics")


if __name__ == "__main__":
    main()
