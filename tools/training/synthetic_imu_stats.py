#!/usr/bin/env python3
"""Compute the constants of the demo's synthetic IMU generator (samples/Har.Cli/Demo/SyntheticImu.cs) from UCI HAPT.

Only the official training subjects are used (splits.csv), and only windows of 200 samples (stride 100 from each
session's start, the training protocol) whose every frame carries the same basic activity (labels 1-6):

- Mean:       per activity, the mean of each channel (ax ay az in g, gx gy gz in rad/s).
- StaticStd:  sitting, standing, laying: the median over windows of each channel's standard deviation.
- SensorNoise: the median over the static windows of std(successive differences) / sqrt(2) (the white part).
- StrideHz, CycleCos, CycleSin: walking, upstairs, downstairs: each window is fitted by least squares with a mean and
  8 harmonics of a stride frequency f0 searched over 0.6-1.25 Hz; the coefficients are phase-aligned so that the
  vertical (ax) step harmonic (h = 2) has phase 0, the half-stride ambiguity (odd harmonics' sign) is resolved by
  agreement with the running mean, and averaged. x(t) = sum_h a_h cos(h theta) - b_h sin(h theta), theta = 2 pi f0 t.
- GaitNoise:  per channel, sqrt(mean within-window variance - power of the mean cycle), what the cycle leaves.

    python3 tools/training/synthetic_imu_stats.py [--data ../shared/data/uci-hapt]

Requirements: Python 3 and numpy. Prints the tables in C# syntax.
"""

import argparse
import gzip
import os

import numpy as np

SCRIPT_DIR = os.path.dirname(os.path.abspath(__file__))
DEFAULT_DATA = os.path.join(SCRIPT_DIR, "..", "..", "..", "shared", "data", "uci-hapt")
L, S, H, SR = 200, 100, 8, 50


def pure_windows(data_dir):
    a = np.loadtxt(gzip.open(os.path.join(data_dir, "hapt_raw_50hz.csv.gz"), "rt"), delimiter=",", skiprows=1)
    splits = dict(np.loadtxt(os.path.join(data_dir, "splits.csv"), delimiter=",", skiprows=1, dtype=str))
    train = {int(k) for k, v in splits.items() if v == "train"}
    key = a[:, 0] * 1000 + a[:, 1]
    bounds = np.r_[0, np.nonzero(np.diff(key))[0] + 1, len(a)]
    windows, labels = [], []
    for s, e in zip(bounds[:-1], bounds[1:]):
        if int(a[s, 0]) not in train:
            continue
        for t in range(s, e - L + 1, S):
            lab = a[t:t + L, 9]
            if (lab == lab[0]).all() and 1 <= lab[0] <= 6:
                windows.append(a[t:t + L, 3:9])
                labels.append(int(lab[0]) - 1)
    return np.array(windows), np.array(labels)


def design(f0):
    t = np.arange(L) / SR
    cols = [np.ones(L)]
    for h in range(1, H + 1):
        cols += [np.cos(2 * np.pi * h * f0 * t), np.sin(2 * np.pi * h * f0 * t)]
    return np.array(cols).T


def fit(w):
    best = None
    for f0 in np.arange(0.6, 1.25, 0.005):
        a = design(f0)
        c, r, _, _ = np.linalg.lstsq(a, w, rcond=None)
        r = ((w - a @ c) ** 2).sum()
        if best is None or r < best[1]:
            best = (f0, r, c)
    f0, r, c = best
    for f in np.arange(f0 - 0.005, f0 + 0.005, 0.0005):
        a = design(f)
        c2 = np.linalg.lstsq(a, w, rcond=None)[0]
        r2 = ((w - a @ c2) ** 2).sum()
        if r2 < r:
            f0, r, c = f, r2, c2
    z = c[1::2] - 1j * c[2::2]  # x = Re(z exp(i h theta))
    hh = np.arange(1, H + 1)[:, None]
    return f0, z * np.exp(-1j * hh * np.angle(z[1, 0]) / 2)


def fmt(v):
    return ", ".join(("%.3f" % x).replace("-0.000", "0.000") for x in v)


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", default=DEFAULT_DATA)
    args = p.parse_args()
    w, y = pure_windows(args.data)
    print("// %d windows of the training subjects, per activity %s" % (len(y), np.bincount(y, minlength=6).tolist()))
    print("Mean =\n[\n" + "".join("    [%s],\n" % fmt(w[y == a].mean((0, 1))) for a in range(6)) + "];")
    print("StaticStd =\n[\n" + "".join("    [%s],\n" % fmt(np.median(w[y == a].std(1), 0)) for a in (3, 4, 5)) + "];")
    st = w[y >= 3]
    print("SensorNoise = [%s];" % fmt(np.median(np.diff(st, axis=1).std(1) / np.sqrt(2), 0)))
    sign = np.where(np.arange(1, H + 1) % 2 == 1, -1, 1)[:, None]
    stride, noise, cos, sin = [], [], [], []
    for a in (0, 1, 2):
        fits = [fit(x) for x in w[y == a]]
        f0 = np.array([f for f, _ in fits])
        c = np.array([z for _, z in fits])
        c[np.real(c[:, 0, 3]) < 0] *= sign  # a first guess for the half-stride ambiguity, then agreement with the mean
        for _ in range(5):
            t = c.mean(0)
            flip = np.real((c * sign * np.conj(t)).sum((1, 2))) > np.real((c * np.conj(t)).sum((1, 2)))
            c[flip] *= sign
        t = c.mean(0)
        stride.append(f0.mean())
        noise.append(np.sqrt(np.maximum(w[y == a].var(1).mean(0) - (np.abs(t) ** 2).sum(0) / 2, 0)))
        cos.append(t.real.T)
        sin.append(t.imag.T)
    print("StrideHz = [%s];" % fmt(stride))
    print("GaitNoise =\n[\n" + "".join("    [%s],\n" % fmt(n) for n in noise) + "];")
    for name, m in (("CycleCos", cos), ("CycleSin", sin)):
        print(name + " =\n[\n" + "".join("    [\n" + "".join("        [%s],\n" % fmt(ch) for ch in a) + "    ],\n" for a in m) + "];")


if __name__ == "__main__":
    main()
