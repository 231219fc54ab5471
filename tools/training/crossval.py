#!/usr/bin/env python3
"""Compare training settings by cross-validation over the official training subjects.

The default validation split (subjects 28, 29, 30) holds about 900 windows and 20-40 of each postural transition, so a
single run's validation macro-F1 moves by a point or two with the seed and cannot tell close settings apart. This script
trains every setting once per fold, with each fold's subjects held out as that run's validation subjects (the fold's run
selects its epoch on them, as train.py always does), and pools the held-out predictions of all folds into one confusion
matrix per setting: every official training subject is predicted exactly once, by a model that never saw it.

The test subjects are never read by this script's report (train.py still evaluates them at the end of every run; those
figures stay in the run's own metrics file and are not used here).

Run from the repository root, for example (two settings, 3 folds, two runs at a time):

    python3 tools/training/crossval.py --out cv-runs --jobs 2 \\
        --setting "epochs40=--arch cnn_bilstm --hidden 96 --context 200 --epochs 40" \\
        --setting "epochs60=--arch cnn_bilstm --hidden 96 --context 200 --epochs 60"

Every run writes <out>/<setting>.fold<k>.metrics.json (and .onnx, .log); a run whose metrics file exists is not run again,
so an interrupted study resumes where it stopped. The report is printed and written to <out>/crossval.md.
"""

import argparse
import concurrent.futures
import json
import os
import shlex
import subprocess
import sys
import threading
import time

import numpy as np

SCRIPT_DIR = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, SCRIPT_DIR)
import train  # noqa: E402  (the metric definitions and the data reader are train.py's own)

RESERVED = {"--val-subjects", "--holdout-subjects", "--out", "--metrics-out", "--data", "--version", "--threads"}


def parse_setting(text):
    label, sep, rest = text.partition("=")
    label = label.strip()
    if not sep or not label or not label.replace("-", "").replace("_", "").replace(".", "").isalnum():
        raise argparse.ArgumentTypeError(
            "a setting is LABEL=TRAIN_OPTIONS with a label of letters, digits, '-', '_' or '.', "
            "e.g. \"epochs60=--arch cnn_bilstm --epochs 60\"; got %r" % text)
    options = shlex.split(rest)
    taken = sorted(o for o in options if o.split("=")[0] in RESERVED)
    if taken:
        raise argparse.ArgumentTypeError(
            "setting %r passes %s, which this script sets for every run (folds, output files, data, threads)"
            % (label, ", ".join(taken)))
    if "--arch" not in options:
        raise argparse.ArgumentTypeError("setting %r has no --arch (train.py requires one)" % label)
    return label, options


def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--setting", action="append", type=parse_setting, required=True, metavar="LABEL=OPTIONS",
                   help="a label and the train.py options of one setting; give it once per setting")
    p.add_argument("--folds", type=int, default=3, help="number of folds over the 21 training subjects (default 3)")
    p.add_argument("--jobs", type=int, default=2, help="runs at a time, one torch thread each (default 2)")
    p.add_argument("--out", required=True, help="folder for the runs' files and the report (created)")
    p.add_argument("--protocol", choices=sorted(PROTOCOLS), default="select",
                   help="how each fold's run is trained and judged: select = the fold is the run's validation "
                        "subjects (it selects its epoch on the subjects it is judged on: optimistic, the same for "
                        "every setting); nested = the fold is held out, and the run validates on the three "
                        "highest-numbered subjects it fits otherwise (train.py's default protocol, in miniature); "
                        "refit = the fold is held out and the run fits every other training subject for exactly "
                        "--epochs epochs, exporting the last weights (train.py --val-subjects \"\"). nested and refit "
                        "judge each run on subjects nothing was chosen on, so they compare the two protocols "
                        "(default select)")
    p.add_argument("--data", default=train.DEFAULT_DATA, help="the uci-hapt folder (default as train.py's)")
    args = p.parse_args(argv)
    labels = [label for label, _ in args.setting]
    if len(set(labels)) != len(labels):
        p.error("setting labels must be distinct; got %s" % ", ".join(labels))
    if not 2 <= args.folds <= 21:
        p.error("--folds must be between 2 and 21 (the training subjects); got %d" % args.folds)
    if args.jobs < 1:
        p.error("--jobs must be at least 1; got %d" % args.jobs)
    splits_path = os.path.join(args.data, "splits.csv")
    if not os.path.isfile(splits_path):
        p.error("no splits.csv in --data %s: point it at the uci-hapt folder" % args.data)
    return args


def training_subjects(data_dir):
    rows = train.read_small_csv(os.path.join(data_dir, "splits.csv"))
    return sorted(int(r["subject"]) for r in rows if r["split"] == "train")


PROTOCOLS = {"select", "nested", "refit"}
PROTOCOL_TEXT = dict(
    select="each run selects its epoch on the subjects it is judged on",
    nested="each run validates on the three highest-numbered subjects it does not hold out and fits the rest",
    refit="each run fits every subject it does not hold out for exactly --epochs epochs and keeps the last weights")
NESTED_VALIDATION = 3  # as train.py's default validation subjects (28, 29, 30): the highest-numbered three


def fold_subjects(protocol, fold, subjects):
    """(validation subjects, holdout subjects) of a fold's run under a protocol; the report pools the judged ones."""
    if protocol == "select":
        return list(fold), []
    if protocol == "refit":
        return [], list(fold)
    rest = [s for s in subjects if s not in fold]
    return sorted(rest)[-NESTED_VALIDATION:], list(fold)


def judged(protocol, metrics):
    """The figures a run is judged by: its validation subjects' (select) or its holdout subjects' (nested, refit)."""
    return metrics["validation"] if protocol == "select" else metrics["holdout"]


def make_folds(subjects, k):
    """Fold i holds every k-th subject from the i-th on (subjects sorted): deterministic and spread over the ids."""
    return [subjects[i::k] for i in range(k)]


def metrics_from_confusion(cm, names):
    """train.classification_metrics' figures from a confusion matrix (rows true, columns predicted)."""
    cm = np.asarray(cm, dtype=np.int64)
    y_true = np.repeat(np.arange(cm.shape[0]), cm.sum(axis=1))
    y_pred = np.concatenate([np.repeat(np.arange(cm.shape[1]), row) for row in cm]) if cm.sum() else np.zeros(0, int)
    return train.classification_metrics(y_true, y_pred, names)


def run_one(args, label, options, fold_index, fold, subjects, progress):
    stem = os.path.join(args.out, "%s.fold%d" % (label, fold_index))
    validation, holdout = fold_subjects(args.protocol, fold, subjects)
    # the protocol is recorded with the options (select, the original one, as before), so a resumed study keeps it
    recorded = options if args.protocol == "select" else [*options, "--protocol=%s" % args.protocol]
    metrics_path = stem + ".metrics.json"
    options_path = stem + ".options"
    if os.path.isfile(options_path):
        with open(options_path, encoding="utf-8") as f:
            earlier = f.read().strip()
        if earlier != shlex.join(recorded):
            raise SystemExit("%s holds a run of setting %r with other options (%s, now %s): use another label or "
                             "another --out" % (args.out, label, earlier, shlex.join(recorded)))
    else:
        with open(options_path, "w", encoding="utf-8") as f:
            f.write(shlex.join(recorded) + "\n")
    if os.path.isfile(metrics_path):
        progress("%s fold %d: already done (%s)" % (label, fold_index, os.path.basename(metrics_path)), done=True)
        return metrics_path
    command = [sys.executable, os.path.join(SCRIPT_DIR, "train.py"), *options,
               "--val-subjects", ",".join(str(s) for s in validation),
               "--holdout-subjects", ",".join(str(s) for s in holdout), "--data", args.data, "--threads", "1",
               "--version", "0.0.%d" % fold_index, "--out", stem + ".onnx", "--metrics-out", metrics_path + ".partial"]
    progress("%s fold %d (%s): started" % (label, fold_index, "; ".join(
        "%s subjects %s" % (kind, ",".join(str(s) for s in group))
        for kind, group in (("validation", validation), ("holdout", holdout)) if group)))
    t0 = time.time()
    with open(stem + ".log", "w", encoding="utf-8") as log_file:
        result = subprocess.run(command, stdout=log_file, stderr=subprocess.STDOUT)
    if result.returncode != 0:
        raise RuntimeError("%s fold %d failed with exit code %d; see %s" % (label, fold_index, result.returncode,
                                                                           stem + ".log"))
    os.replace(metrics_path + ".partial", metrics_path)  # only a finished run counts as done
    progress("%s fold %d: done in %.0f s" % (label, fold_index, time.time() - t0), done=True)
    return metrics_path


def read_json(path):
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def report(args, folds, results, names):
    lines = ["# Cross-validation over the official training subjects", "",
             "%d folds (held-out subjects of each: %s), protocol %s (%s); every training subject is predicted once, "
             "by the run that held it out. Pooled = one confusion matrix over all folds' held-out windows." % (
                 len(folds), "; ".join(",".join(str(s) for s in f) for f in folds), args.protocol,
                 PROTOCOL_TEXT[args.protocol]), "",
             "| setting | pooled accuracy | pooled macro-F1 | macro-F1 per fold | best epochs | train.py options |",
             "|---|---:|---:|---|---|---|"]
    pooled = {}
    for label, options in args.setting:
        runs = results[label]
        cm = np.sum([np.array(judged(args.protocol, r)["confusion_matrix"]) for r in runs], axis=0)
        m = metrics_from_confusion(cm, names)
        pooled[label] = m
        lines.append("| %s | %.4f | %.4f | %s | %s | `%s` |" % (
            label, m["accuracy"], m["macro_f1"], " / ".join("%.4f" % judged(args.protocol, r)["macro_f1"] for r in runs),
            " / ".join(str(r["best_epoch"]) for r in runs), " ".join(shlex.quote(o) for o in options)))
    lines += ["", "Pooled per-class F1:", "",
              "| class | " + " | ".join(label for label, _ in args.setting) + " |",
              "|---|" + "---:|" * len(args.setting)]
    for i, name in enumerate(names):
        lines.append("| %s | %s |" % (name, " | ".join("%.4f" % pooled[label]["per_class"][i]["f1"]
                                                      for label, _ in args.setting)))
    return "\n".join(lines) + "\n"


def main(argv=None):
    args = parse_args(sys.argv[1:] if argv is None else argv)
    os.makedirs(args.out, exist_ok=True)
    subjects = training_subjects(args.data)
    folds = make_folds(subjects, args.folds)
    lock = threading.Lock()
    total = len(args.setting) * len(folds)
    finished = [0]
    t_start = time.time()

    def progress(message, done=False):
        with lock:
            if done:
                finished[0] += 1
            print("[%5.0f s, %d/%d runs] %s" % (time.time() - t_start, finished[0], total, message), flush=True)

    jobs = [(label, options, i, fold, subjects) for label, options in args.setting for i, fold in enumerate(folds)]
    paths = {}
    with concurrent.futures.ThreadPoolExecutor(max_workers=args.jobs) as pool:
        futures = {pool.submit(run_one, args, *job, progress): job for job in jobs}
        try:
            for future in concurrent.futures.as_completed(futures):
                label, _, i, _, _ = futures[future]
                paths[(label, i)] = future.result()
        except BaseException:
            pool.shutdown(wait=True, cancel_futures=True)  # let the running runs finish, start no other
            raise
    results = {label: [read_json(paths[(label, i)]) for i in range(len(folds))] for label, _ in args.setting}
    names = results[args.setting[0][0]][0]["labels"]
    text = report(args, folds, results, names)
    with open(os.path.join(args.out, "crossval.md"), "w", encoding="utf-8") as f:
        f.write(text)
    print(text, end="")


if __name__ == "__main__":
    main()
