#!/usr/bin/env python3
"""Train a human-activity-recognition model on UCI HAPT and export it to ONNX with a model card.

See README.md next to this file. Short version (run from the repository root):

    python3 tools/training/train.py --arch cnn_bilstm --version 1.0.0 --out models/har-cnn-bilstm-1.0.0.onnx
    python3 tools/training/train.py --arch cnn_bilstm_fr --name har-cnn-bilstm --version 1.1.0 --epochs 40 --out models/har-cnn-bilstm-1.1.0.onnx

Requirements: Python 3, numpy, torch (tested with torch 1.13 / numpy 1.24), onnx (tested with 1.12).
"""

import argparse
import copy
import datetime
import gzip
import hashlib
import json
import os
import random
import shlex
import sys
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

SCRIPT_DIR = os.path.dirname(os.path.abspath(__file__))
REPO_ROOT = os.path.abspath(os.path.join(SCRIPT_DIR, "..", ".."))
DEFAULT_DATA = os.path.join(REPO_ROOT, "..", "shared", "data", "uci-hapt")

DATA_FILE = "hapt_raw_50hz.csv.gz"
EXPECTED_HEADER = ["subject", "session", "t_index", "ax", "ay", "az", "gx", "gy", "gz", "label"]
CHANNELS = ["ax", "ay", "az", "gx", "gy", "gz"]
WINDOW_LENGTH = 200   # samples = 4 s at 50 Hz
STRIDE = 100          # samples = 2 s
SAMPLE_RATE_HZ = 50
N_LABEL_IDS = 13      # 0 = UNLABELED, 1..12 activities
N_CLASSES = 12        # output index i  <->  label id i + 1
DEFAULT_VAL_SUBJECTS = [28, 29, 30]
DEFAULT_HIDDEN = 128  # LSTM hidden units per direction (--hidden)

LABELLING_RULE = (
    "Every session is windowed from t_index 0 with window length 200 and stride 100; only windows "
    "lying completely inside the session are used. A window's label is the most frequent label id "
    "among its 200 samples; ties are broken towards the smallest label id. Windows whose label is "
    "0 (UNLABELED) are excluded (this includes ties between 0 and an activity). Output index i is "
    "label id i+1."
)


def context_rule(context):
    """The sentence the card's labelling rule gains with --context (har.context_frames > 0)."""
    return (
        "The network also reads the %d samples before each labelled window: the input of the window starting at "
        "t_index s is the session's samples [s - %d, s + 200) (%d samples, har.window_length + har.context_frames), "
        "where samples before t_index 0 are copies of the session's first sample (t_index 0); the label, the "
        "windows and the evaluation are those of the labelled window [s, s + 200) as above." % (
            context, context, context + WINDOW_LENGTH))


NORMALIZATION_RULE = (
    "Per channel, mean and population standard deviation (ddof=0) over every sample (all rows, "
    "including UNLABELED ones, each row counted once) of the training subjects used for fitting "
    "(the official training subjects minus the validation subjects), computed in float64 and "
    "rounded to float32. The model expects (x - mean_c) / std_c per channel; the ONNX graph does "
    "not normalise."
)


def log(*a):
    print(*a, flush=True)


# ----------------------------------------------------------------------------------------------
# paths and command line
# ----------------------------------------------------------------------------------------------

def repo_rel(path):
    """Path relative to the repository root, with forward slashes (for the card and the log)."""
    return os.path.relpath(os.path.abspath(path), REPO_ROOT).replace(os.sep, "/")


PATH_OPTIONS = {"--data", "--out", "--metrics-out"}


def training_command(argv):
    """The command line as run, with path-valued options rewritten relative to the repository root."""
    out = ["python3", "tools/training/train.py"]
    i = 0
    while i < len(argv):
        a = argv[i]
        if a in PATH_OPTIONS and i + 1 < len(argv):
            out += [a, repo_rel(argv[i + 1])]
            i += 2
            continue
        if "=" in a and a.split("=", 1)[0] in PATH_OPTIONS:
            k, v = a.split("=", 1)
            out.append(k + "=" + repo_rel(v))
        else:
            out.append(a)
        i += 1
    return " ".join(shlex.quote(x) for x in out)


def semver(s):
    parts = s.split(".")
    if len(parts) != 3 or not all(p.isdigit() and (p == "0" or not p.startswith("0")) for p in parts):
        raise argparse.ArgumentTypeError("version must be semver MAJOR.MINOR.PATCH, got %r" % s)
    return s


def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", default=DEFAULT_DATA,
                   help="folder with hapt_raw_50hz.csv.gz, labels.csv, splits.csv "
                        "(default: ../shared/data/uci-hapt relative to the repository root)")
    p.add_argument("--arch", required=True, choices=sorted(ARCHITECTURES))
    p.add_argument("--name", default=None,
                   help="model name in the card (default har-cnn-bilstm for cnn_bilstm*, har-cnn for cnn*)")
    p.add_argument("--output", choices=["probabilities", "logits"], default=None,
                   help="graph output (default probabilities for cnn_bilstm, logits otherwise)")
    p.add_argument("--version", type=semver, default=None,
                   help="model version (semver); default 1.0.0 for cnn_bilstm, 1.1.0 for cnn")
    p.add_argument("--out", default=None,
                   help="output .onnx path (default models/har-<arch>-<version>.onnx in the repository)")
    p.add_argument("--metrics-out", default=None,
                   help="metrics JSON path (default: <out without .onnx>.metrics.json)")
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--epochs", type=int, default=None, help="maximum epochs (default 60 cnn_bilstm, 80 cnn)")
    p.add_argument("--patience", type=int, default=25,
                   help="stop when validation macro-F1 has not improved for this many epochs (0 = never)")
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--lr", type=float, default=2e-3, help="peak learning rate (one-cycle schedule)")
    p.add_argument("--weight-decay", type=float, default=1e-2)
    p.add_argument("--dropout", type=float, default=0.3)
    p.add_argument("--label-smoothing", type=float, default=0.05)
    p.add_argument("--ema", type=float, default=0.995,
                   help="decay of the exponential moving average of the weights that is evaluated and "
                        "exported (per optimizer step; 0 = use the raw weights)")
    p.add_argument("--class-weight-power", type=float, default=0.5,
                   help="cross-entropy class weight = (n_max / n_class) ** power over the fitting windows "
                        "(0 = unweighted)")
    p.add_argument("--mixup", type=float, default=0.0,
                   help="mixup of training windows with Beta(a, a) weights (0 = off)")
    p.add_argument("--soft-labels", action="store_true",
                   help="train on each window's label proportions instead of its majority label")
    p.add_argument("--shift-relabel", action="store_true",
                   help="time shifts may change a window's majority label; the window takes its new label")
    p.add_argument("--context", type=int, default=0, metavar="FRAMES",
                   help="also give the network the FRAMES samples of the stream before each labelled window "
                        "(a multiple of what --context-reader needs; a session's first windows are padded with its "
                        "first sample); the "
                        "labels, windows and evaluation are unchanged, the network pools over the labelled span "
                        "only. The exported graph's input is [N, FRAMES + 200, 6] and its card has "
                        "har.context_frames = FRAMES (har.window_length stays 200, the labelled window): the runtime "
                        "feeds window k the stream's frames [k*100 - FRAMES, k*100 + 200), the stream's first frame "
                        "repeated where the stream has not begun, and the label is that of [k*100, k*100 + 200)")
    p.add_argument("--aux-context", type=float, default=0.0, metavar="WEIGHT",
                   help="with --context (reader full): also train a second head, on the LSTM's output over the "
                        "context's steps, to name the activity the context frames hold (their majority label; "
                        "unlabelled ones left out), with this weight in the loss; the head is not exported "
                        "(default 0: none)")
    p.add_argument("--context-reader", choices=["full", "means", "conv"], default="full",
                   help="how the network reads the --context frames: full = the front end and LSTM run over them too "
                        "(about twice the inference cost); means = the means of its 0.5-s blocks through one small "
                        "layer (FRAMES a multiple of 25); conv = two small convolution blocks over the context "
                        "averaged to 12.5 Hz (FRAMES a multiple of 4); means and conv join the pooled features and "
                        "cost about what the labelled window alone costs")
    p.add_argument("--hidden", type=int, default=None, metavar="N",
                   help="hidden units per direction of the bidirectional LSTM (cnn_bilstm* architectures only; "
                        "default %d)" % DEFAULT_HIDDEN)
    p.add_argument("--no-augment", action="store_true", help="disable training-set augmentation")
    p.add_argument("--aug-shift", type=int, default=50,
                   help="max random time shift of a training window in samples (label-preserving only)")
    p.add_argument("--aug-rotation", type=float, default=10.0,
                   help="max angle (degrees) of the random 3-D rotation applied to acc and gyro")
    p.add_argument("--aug-scale", type=float, default=0.05, help="sd of the per-channel random scale factor")
    p.add_argument("--aug-noise", type=float, default=0.01, help="sd of the additive Gaussian jitter (g, rad/s)")
    p.add_argument("--val-subjects", default=",".join(str(s) for s in DEFAULT_VAL_SUBJECTS),
                   help="comma-separated training subjects held out for validation; an empty value fits on every "
                        "official training subject for exactly --epochs epochs and exports the last weights "
                        "(a refit with settings chosen on validation before: no model selection, no early stop)")
    p.add_argument("--holdout-subjects", default="",
                   help="comma-separated official training subjects left out of fitting, validation and the "
                        "normalisation; the exported model predicts them at the end and the metrics file reports "
                        "them as \"holdout\" (how crossval.py measures a protocol, such as the refit, that selects "
                        "nothing on the subjects it is judged on; default none)")
    p.add_argument("--threads", type=int, default=1,
                   help="torch intra-op threads (1 is much faster than 2 when other processes load the CPU)")
    p.add_argument("--opset", type=int, default=13)
    args = p.parse_args(argv)
    if args.version is None:
        args.version = "1.0.0" if args.arch == "cnn_bilstm" else "1.1.0"
    if args.epochs is None:
        args.epochs = 60 if args.arch.startswith("cnn_bilstm") else 80
    if args.name is None:
        args.name = model_name(args.arch)
    if args.output is None:
        args.output = "probabilities" if args.arch == "cnn_bilstm" else "logits"
    if args.out is None:
        args.out = os.path.join(REPO_ROOT, "models", "%s-%s.onnx" % (args.name, args.version))
    if args.metrics_out is None:
        base = args.out[:-5] if args.out.endswith(".onnx") else args.out
        args.metrics_out = base + ".metrics.json"
    args.val_subjects = sorted(int(s) for s in args.val_subjects.split(",") if s.strip())
    args.holdout_subjects = sorted(int(s) for s in args.holdout_subjects.split(",") if s.strip())
    if set(args.val_subjects) & set(args.holdout_subjects):
        p.error("--holdout-subjects and --val-subjects must not share a subject; both hold %s"
                % ",".join(str(s) for s in sorted(set(args.val_subjects) & set(args.holdout_subjects))))
    multiple = dict(full=8, means=25, conv=4)[args.context_reader]
    if args.context < 0 or args.context % multiple != 0:
        p.error("--context with --context-reader %s must be a non-negative multiple of %d, got %d"
                % (args.context_reader, multiple, args.context))
    if args.context_reader != "full" and not args.context:
        p.error("--context-reader %s needs --context FRAMES" % args.context_reader)
    if args.context and not args.arch.startswith("cnn_bilstm"):
        p.error("--context needs a cnn_bilstm architecture (it pools the LSTM's output over the labelled span)")
    if args.soft_labels and args.mixup > 0:
        p.error("--soft-labels does not combine with --mixup (mixup mixes the majority labels)")
    if args.aux_context < 0:
        p.error("--aux-context must be a non-negative weight, got %g" % args.aux_context)
    if args.aux_context > 0 and (not args.context or args.context_reader != "full"):
        p.error("--aux-context needs --context FRAMES with --context-reader full (the head reads the LSTM's output "
                "over the context's steps)")
    if args.aux_context > 0 and (args.mixup > 0 or args.soft_labels):
        p.error("--aux-context does not combine with --mixup or --soft-labels")
    if args.hidden is not None and not args.arch.startswith("cnn_bilstm"):
        p.error("--hidden needs a cnn_bilstm architecture (the %s architecture has no LSTM)" % args.arch)
    if args.hidden is None:
        args.hidden = DEFAULT_HIDDEN
    if args.hidden <= 0:
        p.error("--hidden must be a positive number of LSTM units per direction, got %d" % args.hidden)
    return args


def model_name(arch):
    return "har-cnn-bilstm" if arch.startswith("cnn_bilstm") else "har-cnn"


# ----------------------------------------------------------------------------------------------
# data
# ----------------------------------------------------------------------------------------------

def sha256_file(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def read_small_csv(path):
    with open(path, "r", encoding="utf-8") as f:
        lines = [l.strip() for l in f if l.strip()]
    header = lines[0].split(",")
    return [dict(zip(header, l.split(","))) for l in lines[1:]]


def load_data(data_dir):
    path = os.path.join(data_dir, DATA_FILE)
    sha = sha256_file(path)
    with gzip.open(path, "rt", encoding="utf-8") as f:
        header = f.readline().strip().split(",")
        if header != EXPECTED_HEADER:
            raise SystemExit("unexpected header in %s: %s" % (DATA_FILE, header))
        arr = np.loadtxt(f, delimiter=",", dtype=np.float64)
    subject = arr[:, 0].astype(np.int64)
    session = arr[:, 1].astype(np.int64)
    t_index = arr[:, 2].astype(np.int64)
    x = arr[:, 3:9].astype(np.float32)
    label = arr[:, 9].astype(np.int64)
    del arr
    if label.min() < 0 or label.max() >= N_LABEL_IDS:
        raise SystemExit("label ids outside 0..12")

    labels = read_small_csv(os.path.join(data_dir, "labels.csv"))
    ids = [int(r["id"]) for r in labels]
    if ids != list(range(N_LABEL_IDS)):
        raise SystemExit("labels.csv must list ids 0..12 in order")
    names = [r["name"] for r in labels]  # index = label id
    splits = {int(r["subject"]): r["split"] for r in read_small_csv(os.path.join(data_dir, "splits.csv"))}

    # sessions: contiguous blocks of rows, t_index 0..n-1
    change = np.flatnonzero(np.diff(session) != 0) + 1
    bounds = np.concatenate([[0], change, [len(session)]])
    sessions = []
    for lo, hi in zip(bounds[:-1], bounds[1:]):
        if not (np.all(session[lo:hi] == session[lo]) and np.all(subject[lo:hi] == subject[lo])):
            raise SystemExit("session rows are not contiguous")
        if not np.array_equal(t_index[lo:hi], np.arange(hi - lo)):
            raise SystemExit("t_index of session %d does not run 0..n-1" % session[lo])
        sessions.append((int(subject[lo]), int(session[lo]), int(lo), int(hi)))
    if len({s[1] for s in sessions}) != len(sessions):
        raise SystemExit("a session appears in more than one block of rows")
    return dict(path=path, sha256=sha, x=x, label=label, subject=subject, names=names, splits=splits,
                sessions=sessions)


def make_windows(data):
    """Window every session from t_index 0 (length 200, stride 100, fully inside the session)."""
    label = data["label"]
    # cumulative per-label counts: counts in rows [a, b) = cum[b] - cum[a]
    onehot = np.zeros((len(label), N_LABEL_IDS), dtype=np.int32)
    onehot[np.arange(len(label)), label] = 1
    cum = np.zeros((len(label) + 1, N_LABEL_IDS), dtype=np.int32)
    np.cumsum(onehot, axis=0, out=cum[1:])
    del onehot
    starts, labs, subj, sess_lo, sess_hi = [], [], [], [], []
    for subject, _session, lo, hi in data["sessions"]:
        n = hi - lo
        st = lo + np.arange(0, n - WINDOW_LENGTH + 1, STRIDE)
        counts = cum[st + WINDOW_LENGTH] - cum[st]
        lab = counts.argmax(axis=1)  # argmax returns the first maximum = smallest label id on ties
        keep = lab != 0
        starts.append(st[keep]); labs.append(lab[keep])
        subj.append(np.full(keep.sum(), subject)); sess_lo.append(np.full(keep.sum(), lo))
        sess_hi.append(np.full(keep.sum(), hi))
    w = dict(start=np.concatenate(starts), label_id=np.concatenate(labs), subject=np.concatenate(subj),
             sess_lo=np.concatenate(sess_lo), sess_hi=np.concatenate(sess_hi))
    w["y"] = w["label_id"] - 1
    return w, cum


def subset(w, mask):
    return {k: v[mask] for k, v in w.items()}


def model_inputs(x, w, context, mean, std):
    """The normalised float32 inputs of every window of `w` (a subset from make_windows), as the network reads them."""
    return ((gather(x, w["start"], w["sess_lo"], context) - mean) / std).astype(np.float32)


def gather(x, starts, lo=None, context=0):
    """The windows [n, context + 200, 6] starting at `starts`, with `context` samples before each; samples before
    the window's session start `lo` repeat its first sample."""
    if context == 0:
        idx = starts[:, None] + np.arange(WINDOW_LENGTH)[None, :]
        return x[idx]  # [n, 200, 6]
    idx = starts[:, None] - context + np.arange(context + WINDOW_LENGTH)[None, :]
    return x[np.maximum(idx, lo[:, None])]


# ----------------------------------------------------------------------------------------------
# augmentation (training windows only)
# ----------------------------------------------------------------------------------------------

class Augmenter:
    """Random time shift (label-preserving), small 3-D rotation, per-channel scaling and jitter.

    Applied in sensor units before normalisation, on training windows only."""

    def __init__(self, x, cum, rng, max_shift=50, max_angle_deg=10.0, scale_sd=0.05,
                 acc_noise=0.01, gyro_noise=0.01, relabel=False, context=0):
        self.x, self.cum, self.rng, self.relabel, self.context = x, cum, rng, relabel, context
        self.max_shift, self.max_angle = max_shift, np.deg2rad(max_angle_deg)
        self.scale_sd, self.acc_noise, self.gyro_noise = scale_sd, acc_noise, gyro_noise

    def shifted_starts(self, w, idx):
        st = w["start"][idx]
        cand = st + self.rng.integers(-self.max_shift, self.max_shift + 1, size=len(idx))
        inside = (cand >= w["sess_lo"][idx]) & (cand + WINDOW_LENGTH <= w["sess_hi"][idx])
        cand = np.where(inside, cand, st)
        lab = (self.cum[cand + WINDOW_LENGTH] - self.cum[cand]).argmax(axis=1)
        if self.relabel:  # any shift whose window has a labelled majority; it takes that label
            return np.where(lab != 0, cand, st)
        return np.where(lab == w["label_id"][idx], cand, st)  # keep only label-preserving shifts

    def rotations(self, n):
        axis = self.rng.normal(size=(n, 3))
        axis /= np.linalg.norm(axis, axis=1, keepdims=True)
        ang = self.rng.uniform(-self.max_angle, self.max_angle, size=n)
        k = np.zeros((n, 3, 3))
        k[:, 0, 1], k[:, 0, 2], k[:, 1, 2] = -axis[:, 2], axis[:, 1], -axis[:, 0]
        k = k - k.transpose(0, 2, 1)
        s, c = np.sin(ang)[:, None, None], np.cos(ang)[:, None, None]
        return np.eye(3)[None] + s * k + (1 - c) * (k @ k)  # Rodrigues

    def batch(self, w, idx):
        """The augmented windows [n, 200, 6] and their start rows (for the labels of shifted windows)."""
        starts = self.shifted_starts(w, idx)
        xb = gather(self.x, starts, w["sess_lo"][idx], self.context).astype(np.float64)
        r = self.rotations(len(idx))
        xb[:, :, 0:3] = xb[:, :, 0:3] @ r.transpose(0, 2, 1)
        xb[:, :, 3:6] = xb[:, :, 3:6] @ r.transpose(0, 2, 1)
        xb *= self.rng.normal(1.0, self.scale_sd, size=(len(idx), 1, 6))
        noise_sd = np.array([self.acc_noise] * 3 + [self.gyro_noise] * 3)
        xb += self.rng.normal(size=xb.shape) * noise_sd
        return xb.astype(np.float32), starts


# ----------------------------------------------------------------------------------------------
# models
# ----------------------------------------------------------------------------------------------

class FastBiLSTM(nn.Module):
    """Single-layer bidirectional LSTM with exactly the parameters (names, shapes, gate order i,f,g,o)
    of nn.LSTM(batch_first=True, bidirectional=True), its matrix products done with 1x1 conv1d.

    Used for training only: the torch build this was developed with links the reference BLAS, which
    makes nn.LSTM about 10x slower than oneDNN convolutions. The exported graph uses nn.LSTM with the
    same state_dict (checked numerically before export)."""

    def __init__(self, input_size, hidden_size):
        super().__init__()
        ref = nn.LSTM(input_size, hidden_size, batch_first=True, bidirectional=True)
        self.hidden_size = hidden_size
        for n, p in ref.named_parameters():
            self.register_parameter(n, nn.Parameter(p.detach().clone()))

    def forward(self, x):  # x [B, T, C] -> ([B, T, 2H], None)
        H = self.hidden_size
        xt = x.transpose(1, 2)
        # input projections of both directions at once: [B, 8H, T] (forward gates, then reverse gates)
        w_ih = torch.cat([self.weight_ih_l0, self.weight_ih_l0_reverse], 0).unsqueeze(-1)
        b = torch.cat([self.bias_ih_l0 + self.bias_hh_l0, self.bias_ih_l0_reverse + self.bias_hh_l0_reverse], 0)
        xs = F.conv1d(xt, w_ih, b).unbind(2)
        # recurrent products of both directions in one grouped 1x1 convolution
        w_hh = torch.cat([self.weight_hh_l0, self.weight_hh_l0_reverse], 0).unsqueeze(-1)  # [8H, H, 1]
        n_steps, batch = len(xs), x.shape[0]
        h = x.new_zeros(batch, 2 * H, 1)
        c = x.new_zeros(batch, 2, H)
        out_f, out_r = [None] * n_steps, [None] * n_steps
        for t in range(n_steps):
            tr = n_steps - 1 - t  # the reverse direction reads the sequence backwards
            g = torch.cat([xs[t][:, :4 * H], xs[tr][:, 4 * H:]], 1) + F.conv1d(h, w_hh, groups=2).squeeze(-1)
            i, f, gg, o = g.view(batch, 2, 4, H).unbind(2)  # PyTorch gate order i, f, g, o
            c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(gg)
            hh = torch.sigmoid(o) * torch.tanh(c)  # [B, 2, H]
            out_f[t], out_r[tr] = hh[:, 0], hh[:, 1]
            h = hh.reshape(batch, 2 * H, 1)
        return torch.cat([torch.stack(out_f, 1), torch.stack(out_r, 1)], 2), None


def conv_block(cin, cout, k, pool):
    layers = [nn.Conv1d(cin, cout, k, padding=k // 2, bias=False), nn.BatchNorm1d(cout), nn.ReLU()]
    if pool:
        layers.append(nn.MaxPool1d(2))
    return layers


class GravityFrame(nn.Module):
    """Four orientation-free channels computed in the graph from the raw signal: the acceleration along the
    gravity direction (a 0.5-s moving average of the accelerometer, normalised), its magnitude across it, and
    the gyroscope's rate about gravity and across it. A turn of the whole device leaves them unchanged."""

    def __init__(self, mean=None, std=None, smooth=25):
        super().__init__()
        self.register_buffer("in_mean", torch.zeros(6) if mean is None else torch.tensor(np.asarray(mean, dtype=np.float32)))
        self.register_buffer("in_std", torch.ones(6) if std is None else torch.tensor(np.asarray(std, dtype=np.float32)))
        self.pool = nn.AvgPool1d(smooth, stride=1, padding=smooth // 2, count_include_pad=False)
        self.norm = nn.BatchNorm1d(4)

    def forward(self, x):  # x [N, 200, 6] normalised -> [N, 4, 200]
        raw = x * self.in_std + self.in_mean
        a = raw[:, :, 0:3].transpose(1, 2)  # [N, 3, T]
        w = raw[:, :, 3:6].transpose(1, 2)
        g = self.pool(a)
        u = g / torch.sqrt((g * g).sum(dim=1, keepdim=True) + 1e-6)
        av = (a * u).sum(dim=1, keepdim=True)
        ah = torch.sqrt(((a - av * u) ** 2).sum(dim=1, keepdim=True) + 1e-6)
        wv = (w * u).sum(dim=1, keepdim=True)
        wh = torch.sqrt(((w - wv * u) ** 2).sum(dim=1, keepdim=True) + 1e-6)
        return self.norm(torch.cat([av, ah, wv, wh], dim=1))


class CnnBiLSTM(nn.Module):
    """1D-CNN front end (4 conv blocks, time 200 -> 25) + BiLSTM(hidden, default 128) + mean/max pooling over time."""

    def __init__(self, dropout=0.3, fast_lstm=True, hidden=DEFAULT_HIDDEN, full_resolution=False, light=False,
                 gravity=False, mean=None, std=None, context=0, context_reader="full", aux=False):
        super().__init__()
        # --context: "full" pools over the labelled window's steps only; "means" / "conv" read the context beside it
        self.context, self.context_reader = context, context_reader if context else None
        self.gravity = GravityFrame(mean, std) if gravity else None
        cin = 10 if gravity else 6
        if full_resolution and light:  # the champion's widths, first two blocks at the full 200 steps
            self.features = nn.Sequential(
                *conv_block(6, 32, 5, False),
                *conv_block(32, 64, 5, True),
                *conv_block(64, 128, 5, True),
                *conv_block(128, 128, 3, True),
            )
        elif full_resolution:  # first block at the full 200 steps, pooling after blocks 2-4
            self.features = nn.Sequential(
                *conv_block(cin, 48, 5, False),
                *conv_block(48, 96, 5, True),
                *conv_block(96, 128, 5, True),
                *conv_block(128, 128, 3, True),
            )
        else:
            self.features = nn.Sequential(
                *conv_block(6, 32, 5, True),
                *conv_block(32, 64, 5, True),
                *conv_block(64, 128, 5, True),
                *conv_block(128, 128, 3, False),
            )
        self.lstm = FastBiLSTM(128, hidden) if fast_lstm else nn.LSTM(128, hidden, batch_first=True,
                                                                        bidirectional=True)
        self.dropout = nn.Dropout(dropout)
        if context_reader == "conv":  # two small blocks over the context averaged to 12.5 Hz, mean + max pooled
            self.context_net = nn.Sequential(nn.AvgPool1d(4), *conv_block(6, 32, 5, True), *conv_block(32, 64, 5, True))
            self.head = nn.Linear(4 * hidden + 128, N_CLASSES)
        elif context_reader == "means":  # the means of the context's 0.5-s blocks, through one small layer
            self.context_net = nn.Sequential(nn.Linear(context // 25 * 6, 32), nn.ReLU())
            self.head = nn.Linear(4 * hidden + 32, N_CLASSES)
        else:
            self.head = nn.Linear(4 * hidden, N_CLASSES)
        # --aux-context: a training-only head naming the context's activity from the LSTM's output over its steps;
        # its logits are left in self.aux_logits by a training forward pass (the exported graph has no such head)
        self.aux_head = nn.Linear(4 * hidden, N_CLASSES) if aux else None
        self.aux_logits = None

    def forward(self, x):  # x [N, 200, 6] (with --context [N, context + 200, 6]), already normalised
        extra = []
        if self.context_reader == "conv":
            hc = self.context_net(x[:, :self.context].transpose(1, 2))
            extra.append(torch.cat([hc.mean(dim=2), hc.amax(dim=2)], dim=1))
            x = x[:, self.context:]
        elif self.context_reader == "means":
            n, c = x.shape[0], self.context
            extra.append(self.context_net(x[:, :c].reshape(n, c // 25, 25, 6).mean(dim=2).reshape(n, -1)))
            x = x[:, c:]
        xt = x.transpose(1, 2)
        if self.gravity is not None:
            xt = torch.cat([xt, self.gravity(x)], dim=1)
        h = self.features(xt).transpose(1, 2)  # [N, 25, 128]
        o, _ = self.lstm(h)
        if self.context_reader == "full":
            if self.aux_head is not None and self.training:
                oc = o[:, :-(WINDOW_LENGTH // 8)]
                self.aux_logits = self.aux_head(self.dropout(torch.cat([oc.mean(dim=1), oc.amax(dim=1)], dim=1)))
            o = o[:, -(WINDOW_LENGTH // 8):]
        z = torch.cat([o.mean(dim=1), o.amax(dim=1)] + extra, dim=1)
        return self.head(self.dropout(z))


class Cnn(nn.Module):
    """Pure 1D-CNN: 5 conv blocks (time 200 -> 25), global average + global max pooling, linear head."""

    def __init__(self, dropout=0.3):
        super().__init__()
        self.features = nn.Sequential(
            *conv_block(6, 32, 7, True),
            *conv_block(32, 64, 5, True),
            *conv_block(64, 128, 5, True),
            *conv_block(128, 128, 5, False),
            *conv_block(128, 128, 3, False),
        )
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(256, N_CLASSES)

    def forward(self, x):  # x [N, 200, 6], already normalised
        h = self.features(x.transpose(1, 2))
        z = torch.cat([h.mean(dim=2), h.amax(dim=2)], dim=1)
        return self.head(self.dropout(z))


class CnnFullRes(nn.Module):
    """Wider pure 1D-CNN whose first two blocks run at the full 200 steps (time 200 -> 25 after
    blocks 2-4), global average + global max pooling, linear head."""

    def __init__(self, dropout=0.3):
        super().__init__()
        self.features = nn.Sequential(
            *conv_block(6, 64, 7, False),
            *conv_block(64, 64, 5, True),
            *conv_block(64, 128, 5, True),
            *conv_block(128, 128, 5, True),
            *conv_block(128, 128, 3, False),
        )
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(256, N_CLASSES)

    def forward(self, x):  # x [N, 200, 6], already normalised
        h = self.features(x.transpose(1, 2))
        z = torch.cat([h.mean(dim=2), h.amax(dim=2)], dim=1)
        return self.head(self.dropout(z))


ARCHITECTURES = {  # "{hidden}": the LSTM's units per direction (--hidden), see describe_architecture
    "cnn_bilstm": "1D-CNN (4 blocks 6-32-64-128-128, pooling after blocks 1-3, 200 -> 25 steps) + "
                  "bidirectional LSTM ({hidden} per direction), mean + max pooling over time, linear head",
    "cnn_bilstm_fr": "1D-CNN with a full-resolution front end (4 blocks 6-48-96-128-128, pooling after "
                     "blocks 2-4, 200 -> 25 steps) + bidirectional LSTM ({hidden} per direction), mean + max "
                     "pooling over time, linear head",
    "cnn_bilstm_frg": "1D-CNN with a full-resolution front end over the six channels and four orientation-free "
                      "ones computed in the graph (acceleration and rotation rate along and across gravity; 4 blocks "
                      "10-48-96-128-128, pooling after blocks 2-4, 200 -> 25 steps) + bidirectional LSTM ({hidden} per "
                      "direction), mean + max pooling over time, linear head",
    "cnn_bilstm_frl": "1D-CNN with a light full-resolution front end (4 blocks 6-32-64-128-128, pooling after "
                      "blocks 2-4, 200 -> 25 steps) + bidirectional LSTM ({hidden} per direction), mean + max "
                      "pooling over time, linear head",
    "cnn": "pure 1D-CNN (5 blocks 6-32-64-128-128-128, pooling after blocks 1-3), global average + max "
           "pooling, linear head",
    "cnn_fr": "pure 1D-CNN with a full-resolution front end (5 blocks 6-64-64-128-128-128, pooling after "
              "blocks 2-4), global average + max pooling, linear head",
}


def describe_architecture(arch, hidden=DEFAULT_HIDDEN, context=0, context_reader="full"):
    """One line for the log, the card's har.architecture and the report; without --hidden / --context it is the
    text the architecture has always had."""
    text = ARCHITECTURES[arch].replace("{hidden}", str(hidden))
    if context:
        reader = dict(
            full="the front end and the LSTM run over the context and the window (%d -> %d steps) and the LSTM's "
                 "output is pooled over the labelled window's last %d steps only" % (
                     context + WINDOW_LENGTH, (context + WINDOW_LENGTH) // 8, WINDOW_LENGTH // 8),
            means="the means of the context's %d 0.5-s blocks (%d values) through Linear(%d -> 32) + ReLU, joined to "
                  "the pooled features" % (context // 25, context // 25 * 6, context // 25 * 6),
            conv="the context averaged to 12.5 Hz through two conv blocks 6-32-64 (pooling after each), mean + max "
                 "pooled (128 features) and joined to the pooled features",
        )[context_reader]
        text += ("; also reads the %d frames before the labelled window (input %d = %d context + %d frames; context "
                 "reader %s: %s)" % (context, context + WINDOW_LENGTH, context, WINDOW_LENGTH, context_reader, reader))
    return text


def build_model(arch, dropout, for_export=False, mean=None, std=None, context=0, context_reader="full",
                hidden=DEFAULT_HIDDEN, aux=False):
    if arch.startswith("cnn_bilstm"):
        return CnnBiLSTM(dropout=dropout, fast_lstm=not for_export, hidden=hidden,
                         context=context, context_reader=context_reader, aux=aux and not for_export,
                         full_resolution=arch in ("cnn_bilstm_fr", "cnn_bilstm_frl", "cnn_bilstm_frg"),
                         light=arch == "cnn_bilstm_frl", gravity=arch == "cnn_bilstm_frg", mean=mean, std=std)
    if arch == "cnn_fr":
        return CnnFullRes(dropout=dropout)
    return Cnn(dropout=dropout)


def count_parameters(model):
    """Trainable parameters of the exported network (the training-only --aux-context head left out)."""
    return int(sum(p.numel() for n, p in model.named_parameters() if p.requires_grad and not n.startswith("aux_head.")))


# ----------------------------------------------------------------------------------------------
# metrics
# ----------------------------------------------------------------------------------------------

def r6(v):
    return float(round(float(v), 6))


def classification_metrics(y_true, y_pred, names):
    """Accuracy, per-class precision/recall/F1/support, confusion matrix (rows = true, cols = predicted).

    Macro-F1 averages the F1 of the classes that occur in the true labels OR the predictions
    (like sklearn.metrics.f1_score(average='macro') without a labels argument); a class with no
    predictions has precision 0, a class with no support has recall 0, and F1 = 0 when P + R = 0."""
    cm = np.zeros((N_CLASSES, N_CLASSES), dtype=np.int64)
    np.add.at(cm, (y_true, y_pred), 1)
    tp = np.diag(cm).astype(np.float64)
    support = cm.sum(axis=1)
    predicted = cm.sum(axis=0)
    precision = np.divide(tp, predicted, out=np.zeros(N_CLASSES), where=predicted > 0)
    recall = np.divide(tp, support, out=np.zeros(N_CLASSES), where=support > 0)
    denom = precision + recall
    f1 = np.divide(2 * precision * recall, denom, out=np.zeros(N_CLASSES), where=denom > 0)
    present = (support > 0) | (predicted > 0)
    per_class = [dict(name=names[i], precision=r6(precision[i]), recall=r6(recall[i]), f1=r6(f1[i]),
                      support=int(support[i]), predicted=int(predicted[i]), included_in_macro=bool(present[i]))
                 for i in range(N_CLASSES)]
    return dict(
        n_windows=int(len(y_true)),
        accuracy=r6(tp.sum() / max(len(y_true), 1)),
        macro_f1=r6(f1[present].mean() if present.any() else 0.0),
        macro_f1_classes=int(present.sum()),
        per_class=per_class,
        confusion_matrix=cm.tolist(),
    )


def format_report(m, title):
    lines = ["== %s: %d windows" % (title, m["n_windows"]),
             "accuracy  %.6f" % m["accuracy"],
             "macro_f1  %.6f  (over %d classes present in labels or predictions)" % (m["macro_f1"], m["macro_f1_classes"]),
             "%-20s %9s %9s %9s %8s" % ("class", "precision", "recall", "f1", "support")]
    for c in m["per_class"]:
        lines.append("%-20s %9.6f %9.6f %9.6f %8d" % (c["name"], c["precision"], c["recall"], c["f1"], c["support"]))
    lines.append("confusion matrix (rows = true, columns = predicted, order as above):")
    for i, row in enumerate(m["confusion_matrix"]):
        lines.append("%-20s " % m["per_class"][i]["name"] + " ".join("%4d" % v for v in row))
    return "\n".join(lines)


# ----------------------------------------------------------------------------------------------
# training
# ----------------------------------------------------------------------------------------------

def set_determinism(seed, threads):
    torch.set_num_threads(threads)
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    try:
        torch.use_deterministic_algorithms(True)
    except Exception as e:  # pragma: no cover
        log("warning: deterministic algorithms not available:", e)


@torch.no_grad()
def predict(model, xn, batch=512):
    model.eval()
    out = []
    for i in range(0, len(xn), batch):
        out.append(model(torch.from_numpy(xn[i:i + batch])))
    return torch.cat(out).numpy()


def train(args, model, x_raw, cum, w_fit, w_val, mean, std, names):
    gen = torch.Generator().manual_seed(args.seed)
    rng = np.random.default_rng(args.seed)
    aug = None if args.no_augment else Augmenter(
        x_raw, cum, rng, max_shift=args.aug_shift, max_angle_deg=args.aug_rotation, scale_sd=args.aug_scale,
        acc_noise=args.aug_noise, gyro_noise=args.aug_noise, relabel=args.shift_relabel, context=args.context)

    counts = np.bincount(w_fit["y"], minlength=N_CLASSES).astype(np.float64)
    if args.class_weight_power > 0:
        cw = (counts.max() / np.maximum(counts, 1)) ** args.class_weight_power
        cw = cw / (cw * counts).sum() * counts.sum()  # mean weight over the fitting windows = 1
    else:
        cw = np.ones(N_CLASSES)
    log("class weights:", " ".join("%.3f" % v for v in cw))
    criterion = nn.CrossEntropyLoss(weight=torch.tensor(cw, dtype=torch.float32),
                                    label_smoothing=args.label_smoothing)

    decay, no_decay = [], []
    for n, p in model.named_parameters():
        (no_decay if p.ndim == 1 else decay).append(p)
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": args.weight_decay},
                             {"params": no_decay, "weight_decay": 0.0}], lr=args.lr)
    n_fit = len(w_fit["y"])
    steps_per_epoch = (n_fit + args.batch_size - 1) // args.batch_size
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=args.lr, epochs=args.epochs,
                                                steps_per_epoch=steps_per_epoch, pct_start=0.15)

    refit = len(w_val["y"]) == 0  # no validation subjects: train --epochs epochs, keep the last weights
    x_val = model_inputs(x_raw, w_val, args.context, mean, std)
    best = dict(f1=-1.0, epoch=0, state=None, metrics=None)
    # exponential moving average of all parameters and BatchNorm buffers (evaluated and exported)
    ema_model = copy.deepcopy(model) if args.ema > 0 else model
    ema_pairs = [(e, p) for e, p in zip(ema_model.state_dict().values(), model.state_dict().values())]
    for epoch in range(1, args.epochs + 1):
        t0 = time.time()
        model.train()
        perm = torch.randperm(n_fit, generator=gen).numpy()
        loss_sum, correct = 0.0, 0
        for b in range(steps_per_epoch):
            idx = perm[b * args.batch_size:(b + 1) * args.batch_size]
            if aug is not None:
                xb, starts = aug.batch(w_fit, idx)
            else:
                starts = w_fit["start"][idx]
                xb = gather(x_raw, starts, w_fit["sess_lo"][idx], args.context)
            xb = (xb - mean) / std
            counts = (cum[starts + WINDOW_LENGTH] - cum[starts])[:, 1:].astype(np.float64)
            yb = torch.from_numpy(counts.argmax(axis=1))  # = w_fit["y"][idx] unless --shift-relabel moved it
            if args.soft_labels:  # the window's label proportions (unlabelled samples left out)
                soft = torch.from_numpy((counts / counts.sum(axis=1, keepdims=True)).astype(np.float32))
            if args.mixup > 0:
                lam = float(rng.beta(args.mixup, args.mixup))
                lam = max(lam, 1.0 - lam)
                pm = rng.permutation(len(idx))
                xb = lam * xb + (1.0 - lam) * xb[pm]
                logits = model(torch.from_numpy(np.ascontiguousarray(xb, dtype=np.float32)))
                loss = lam * criterion(logits, yb) + (1.0 - lam) * criterion(logits, yb[torch.from_numpy(pm)])
            else:
                logits = model(torch.from_numpy(np.ascontiguousarray(xb, dtype=np.float32)))
                loss = criterion(logits, soft if args.soft_labels else yb)
                if args.aux_context > 0:
                    # the context's majority label (from the session start when it begins earlier); none: ignored
                    lo = np.maximum(starts - args.context, w_fit["sess_lo"][idx])
                    ctx = (cum[starts] - cum[lo]).astype(np.float64)
                    ctx_y = np.where((ctx[:, 1:].sum(axis=1) > 0) & (ctx.argmax(axis=1) != 0),
                                     ctx[:, 1:].argmax(axis=1), -100)
                    loss = loss + args.aux_context * nn.functional.cross_entropy(
                        model.aux_logits, torch.from_numpy(ctx_y), ignore_index=-100)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            nn.utils.clip_grad_norm_(model.parameters(), 5.0)
            opt.step()
            sched.step()
            if args.ema > 0:
                with torch.no_grad():
                    for e, p in ema_pairs:
                        if e.dtype.is_floating_point:
                            e.mul_(args.ema).add_(p, alpha=1.0 - args.ema)
                        else:
                            e.copy_(p)
            loss_sum += float(loss) * len(idx)
            correct += int((logits.argmax(1) == yb).sum())
        if refit:
            if epoch == args.epochs:
                best = dict(f1=None, epoch=epoch, state=copy.deepcopy(ema_model.state_dict()), metrics=None)
            log("epoch %3d  loss %.4f  train_acc %.4f  lr %.2e  %.1fs" % (
                epoch, loss_sum / n_fit, correct / n_fit, sched.get_last_lr()[0], time.time() - t0))
            continue
        vm = classification_metrics(w_val["y"], predict(ema_model, x_val).argmax(1), names)
        improved = vm["macro_f1"] > best["f1"]
        if improved:
            best = dict(f1=vm["macro_f1"], epoch=epoch, state=copy.deepcopy(ema_model.state_dict()), metrics=vm)
        log("epoch %3d  loss %.4f  train_acc %.4f  val_acc %.4f  val_macro_f1 %.4f  lr %.2e  %.1fs%s" % (
            epoch, loss_sum / n_fit, correct / n_fit, vm["accuracy"], vm["macro_f1"],
            sched.get_last_lr()[0], time.time() - t0, "  *" if improved else ""))
        if args.patience and epoch - best["epoch"] >= args.patience:
            log("early stop: no validation macro-F1 improvement for %d epochs" % args.patience)
            break
    model.load_state_dict(best["state"])
    return best


# ----------------------------------------------------------------------------------------------
# export
# ----------------------------------------------------------------------------------------------

def float32_json(values):
    """JSON array of float32 values, each printed with the shortest digits that round-trip to it."""
    vals = [np.float32(v) for v in values]
    text = "[" + ",".join(np.format_float_positional(v, unique=True, trim="-") if abs(v) >= 1e-4
                          else np.format_float_scientific(v, unique=True, trim="-") for v in vals) + "]"
    back = np.array(json.loads(text), dtype=np.float64).astype(np.float32)
    assert np.array_equal(back, np.array(vals, dtype=np.float32)), text
    return text


def export_onnx(args, trained, card, check_x):
    import onnx
    from onnx import checker, helper, shape_inference

    model = build_model(args.arch, args.dropout, for_export=True, context=args.context,
                        context_reader=args.context_reader, hidden=args.hidden)
    # the --aux-context head is training-only: everything else must match exactly
    model.load_state_dict({k: v for k, v in trained.state_dict().items() if not k.startswith("aux_head.")}, strict=True)
    frames = WINDOW_LENGTH + args.context  # the graph's time axis: context frames, then the labelled window
    assert check_x.shape[1:] == (frames, len(CHANNELS)), check_x.shape
    model.eval(); trained.eval()
    with torch.no_grad():
        a = trained(torch.from_numpy(check_x))
        b = model(torch.from_numpy(check_x))
    diff = float((a - b).abs().max())
    log("export model vs training model: max |logit diff| = %.3g on %d windows" % (diff, len(check_x)))
    assert diff < 1e-3, diff

    export = nn.Sequential(model, nn.Softmax(dim=1)) if card["har.output"] == "probabilities" else model
    export.eval()
    os.makedirs(os.path.dirname(os.path.abspath(args.out)) or ".", exist_ok=True)
    tmp = args.out + ".tmp"
    torch.onnx.export(export, torch.from_numpy(check_x[:2]), tmp, input_names=["input"], output_names=["output"],
                      dynamic_axes={"input": {0: "N"}, "output": {0: "N"}}, opset_version=args.opset,
                      do_constant_folding=True, export_params=True)
    m = onnx.load(tmp)
    os.remove(tmp)
    del m.metadata_props[:]
    for k, v in card.items():
        assert isinstance(v, str), k
        m.metadata_props.append(onnx.StringStringEntryProto(key=k, value=v))
    m.producer_name = "har tools/training/train.py"
    m.model_version = int(args.version.split(".")[0]) * 1000000 + int(args.version.split(".")[1]) * 1000 + int(args.version.split(".")[2])
    if args.context:
        m.doc_string = ("%s %s: human activity recognition on 200x6 windows, reading the %d frames before each "
                        "window too (input %dx6; see metadata_props har.*, har.context_frames)" % (
                            card["har.model_name"], card["har.model_version"], args.context, frames))
    else:
        m.doc_string = "%s %s: human activity recognition on 200x6 windows (see metadata_props har.*)" % (
            card["har.model_name"], card["har.model_version"])
    checker.check_model(m, full_check=True)
    inferred = shape_inference.infer_shapes(m, check_type=True, strict_mode=True)

    def dims(vi):
        return [d.dim_param if d.dim_param else d.dim_value for d in vi.type.tensor_type.shape.dim]
    ins, outs = inferred.graph.input, inferred.graph.output
    assert [i.name for i in ins] == ["input"] and [o.name for o in outs] == ["output"]
    assert ins[0].type.tensor_type.elem_type == onnx.TensorProto.FLOAT
    assert outs[0].type.tensor_type.elem_type == onnx.TensorProto.FLOAT
    assert dims(ins[0]) == ["N", frames, len(CHANNELS)], dims(ins[0])
    assert dims(outs[0]) == ["N", N_CLASSES], dims(outs[0])
    opset = max(o.version for o in m.opset_import if o.domain in ("", "ai.onnx"))
    onnx.save_model(m, args.out)  # single file, weights inside
    size = os.path.getsize(args.out)
    assert size < 8 * 1024 * 1024, size
    ops = sorted({n.op_type for n in m.graph.node})
    log("onnx: %s  (%d bytes, opset %d, ir %d, input %s %s, output %s %s, ops %s)" % (
        repo_rel(args.out), size, opset, m.ir_version, ins[0].name, dims(ins[0]), outs[0].name, dims(outs[0]),
        ",".join(ops)))
    log("onnx.checker (full_check) and strict shape inference passed")


# ----------------------------------------------------------------------------------------------
# main
# ----------------------------------------------------------------------------------------------

def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    args = parse_args(argv)
    t_start = time.time()
    command = training_command(argv)
    log("command:", command)
    log("torch %s, numpy %s, python %s, threads %d" % (torch.__version__, np.__version__,
                                                        sys.version.split()[0], args.threads))
    set_determinism(args.seed, args.threads)

    data = load_data(args.data)
    names = data["names"]
    activity_names = names[1:]
    log("data: %s  sha256 %s  rows %d  sessions %d" % (repo_rel(data["path"]), data["sha256"], len(data["label"]),
                                                      len(data["sessions"])))
    splits = data["splits"]
    train_subjects = sorted(s for s, v in splits.items() if v == "train")
    test_subjects = sorted(s for s, v in splits.items() if v == "test")
    val_subjects = args.val_subjects
    if not set(val_subjects) <= set(train_subjects):
        raise SystemExit("validation subjects must be official training subjects")
    holdout_subjects = args.holdout_subjects
    if not set(holdout_subjects) <= set(train_subjects):
        raise SystemExit("holdout subjects must be official training subjects (%s); got %s" % (
            ",".join(str(s) for s in train_subjects), ",".join(str(s) for s in holdout_subjects)))
    fit_subjects = [s for s in train_subjects if s not in val_subjects and s not in holdout_subjects]

    w, cum = make_windows(data)
    w_fit = subset(w, np.isin(w["subject"], fit_subjects))
    w_val = subset(w, np.isin(w["subject"], val_subjects))
    w_test = subset(w, np.isin(w["subject"], test_subjects))
    w_holdout = subset(w, np.isin(w["subject"], holdout_subjects))
    counts = {}
    log("windows (length %d, stride %d, UNLABELED-majority windows excluded):" % (WINDOW_LENGTH, STRIDE))
    for nm, ws in (("train", w_fit), ("validation", w_val), ("test", w_test)) + (
            (("holdout", w_holdout),) if holdout_subjects else ()):
        bc = np.bincount(ws["y"], minlength=N_CLASSES)
        counts[nm] = dict(total=int(len(ws["y"])), per_class={activity_names[i]: int(bc[i]) for i in range(N_CLASSES)})
        log("  %-10s %5d  per class %s" % (nm, len(ws["y"]), " ".join(str(int(v)) for v in bc)))

    fit_rows = np.isin(data["subject"], fit_subjects)
    xf = data["x"][fit_rows].astype(np.float64)
    mean = xf.mean(axis=0).astype(np.float32)
    std = xf.std(axis=0).astype(np.float32)
    del xf
    mean_json, std_json = float32_json(mean), float32_json(std)
    log("normalization over %d samples of the %d fitting subjects" % (int(fit_rows.sum()), len(fit_subjects)))
    log("  mean", mean_json)
    log("  std ", std_json)
    mean = np.array(json.loads(mean_json), dtype=np.float32)  # exactly the recorded values
    std = np.array(json.loads(std_json), dtype=np.float32)

    model = build_model(args.arch, args.dropout, mean=mean, std=std, context=args.context,
                        context_reader=args.context_reader, hidden=args.hidden, aux=args.aux_context > 0)
    n_params = count_parameters(model)
    architecture = describe_architecture(args.arch, args.hidden, args.context, args.context_reader)
    log("model %s (%s): %d trainable parameters" % (args.name, args.arch, n_params))
    log("architecture:", architecture)
    log(str(model))

    t_train, cpu_train = time.time(), time.process_time()
    best = train(args, model, data["x"], cum, w_fit, w_val, mean, std, activity_names)
    train_seconds, train_cpu_seconds = time.time() - t_train, time.process_time() - cpu_train
    if best["metrics"] is None:
        log("training time %.1f s wall clock, %.1f s CPU of this process; refit on every training subject, "
            "last epoch %d exported (no validation subjects)" % (train_seconds, train_cpu_seconds, best["epoch"]))
    else:
        log("training time %.1f s wall clock, %.1f s CPU of this process; best epoch %d "
            "(validation macro-F1 %.6f, accuracy %.6f)" % (train_seconds, train_cpu_seconds, best["epoch"],
                                                            best["metrics"]["macro_f1"], best["metrics"]["accuracy"]))
        log(format_report(best["metrics"], "validation subjects %s (best epoch)" % val_subjects))

    x_test = model_inputs(data["x"], w_test, args.context, mean, std)
    test_pred = predict(model, x_test).argmax(1)
    tm = classification_metrics(w_test["y"], test_pred, activity_names)
    log(format_report(tm, "TEST subjects %s" % test_subjects))
    hm = None
    if holdout_subjects:
        x_hold = model_inputs(data["x"], w_holdout, args.context, mean, std)
        hm = classification_metrics(w_holdout["y"], predict(model, x_hold).argmax(1), activity_names)
        del x_hold
        log(format_report(hm, "holdout subjects %s (never fitted, validated or normalised on)" % holdout_subjects))

    output_kind = args.output
    trained_at = datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0).isoformat().replace("+00:00", "Z")
    training_data = dict(
        dataset="uci-hapt", file=DATA_FILE, sha256=data["sha256"],
        train_subjects=fit_subjects, validation_subjects=val_subjects, test_subjects=test_subjects,
        windows=dict(train=counts["train"]["total"], validation=counts["validation"]["total"],
                     test=counts["test"]["total"]),
        **({"holdout_subjects": holdout_subjects} if holdout_subjects else {}),
        window_length=WINDOW_LENGTH, stride=STRIDE, labelling_rule=LABELLING_RULE,
        normalization_rule=NORMALIZATION_RULE + (
            " The holdout subjects are left out of it too." if holdout_subjects else ""),
    )
    if args.context:  # only then, so that a default card is what it always was
        training_data["labelling_rule"] = LABELLING_RULE + " " + context_rule(args.context)
        training_data["context_frames"] = args.context
    card_metrics = dict(
        split="test", test_subjects=test_subjects, accuracy=tm["accuracy"], macro_f1=tm["macro_f1"],
        n_windows=tm["n_windows"], macro_f1_classes=tm["macro_f1_classes"],
        per_class_f1={c["name"]: c["f1"] for c in tm["per_class"]},
        validation=None if best["metrics"] is None else dict(
            subjects=val_subjects, accuracy=best["metrics"]["accuracy"], macro_f1=best["metrics"]["macro_f1"],
            n_windows=best["metrics"]["n_windows"], best_epoch=best["epoch"]),
    )
    card = {
        "har.model_name": args.name,
        "har.model_version": args.version,
        "har.labels": json.dumps(activity_names),
        "har.window_length": str(WINDOW_LENGTH),
        "har.stride": str(STRIDE),
        **({"har.context_frames": str(args.context)} if args.context else {}),
        "har.sample_rate_hz": str(SAMPLE_RATE_HZ),
        "har.channels": json.dumps(CHANNELS),
        "har.normalization.mean": mean_json,
        "har.normalization.std": std_json,
        "har.output": output_kind,
        "har.parameters": str(n_params),
        "har.training_data": json.dumps(training_data),
        "har.metrics": json.dumps(card_metrics),
        "har.trained_at": trained_at,
        "har.training_command": command,
        "har.architecture": "%s: %s; %d trainable parameters; output %s" % (
            args.arch, architecture, n_params, output_kind),
    }
    export_onnx(args, model, card, x_test[:64])

    report = dict(
        model_name=card["har.model_name"], model_version=args.version, arch=args.arch, parameters=n_params,
        architecture=architecture,
        onnx=os.path.basename(args.out), output=output_kind, trained_at=trained_at, training_command=command,
        training_seconds=round(train_seconds, 1), training_cpu_seconds=round(train_cpu_seconds, 1),
        best_epoch=best["epoch"], epochs_max=args.epochs,
        hyperparameters=dict(seed=args.seed, batch_size=args.batch_size, lr=args.lr,
                             weight_decay=args.weight_decay, dropout=args.dropout,
                             label_smoothing=args.label_smoothing, ema=args.ema, class_weight_power=args.class_weight_power,
                             augment=not args.no_augment, aug_shift=args.aug_shift,
                             aug_rotation_deg=args.aug_rotation, aug_scale=args.aug_scale,
                             aug_noise=args.aug_noise, patience=args.patience, threads=args.threads,
                             opset=args.opset, **({"context": args.context, "context_reader": args.context_reader}
                                                  if args.context else {}),
                             **({"hidden": args.hidden} if args.hidden != DEFAULT_HIDDEN else {})),
        training_data=training_data, window_counts=counts,
        normalization=dict(channels=CHANNELS, mean=json.loads(mean_json), std=json.loads(std_json)),
        macro_f1_definition="mean F1 over the classes present in the true labels or the predictions "
                            "(sklearn f1_score average='macro' behaviour)",
        validation=best["metrics"], test=tm, labels=activity_names,
        **({"holdout": dict(hm, subjects=holdout_subjects)} if hm is not None else {}),
    )
    with open(args.metrics_out, "w", encoding="utf-8") as f:
        json.dump(report, f, indent=2)
        f.write("\n")
    log("metrics: %s" % repo_rel(args.metrics_out))
    log("card:")
    for k, v in card.items():
        log("  %s = %s" % (k, v))
    log("FINAL %s %s: test accuracy %.6f  test macro_f1 %.6f  (%d windows)  parameters %d  "
        "total time %.1f s wall clock, %.1f s CPU" % (
            card["har.model_name"], args.version, tm["accuracy"], tm["macro_f1"], tm["n_windows"], n_params,
            time.time() - t_start, time.process_time()))


if __name__ == "__main__":
    main()
