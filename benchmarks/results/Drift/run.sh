#!/usr/bin/env bash
# Runs the Har.Drift benchmarks and SciPy/NumPy on the same machine in one run, and writes
# benchmarks/results/Drift/README-results.md with the ratios. Usage: benchmarks/results/Drift/run.sh
set -euo pipefail
cd "$(dirname "$0")/../../.."
out=benchmarks/results/Drift
/usr/bin/python3 -c "import scipy" 2>/dev/null || apt-get install -y python3-scipy python3-numpy >/dev/null
/usr/bin/python3 "$out/compare_scipy.py" > "$out/scipy-before.json"
dotnet run -c Release --project benchmarks/Har.Benchmarks -- --filter '*DriftBenchmarks*' --job short --exporters json github >/dev/null
cp BenchmarkDotNet.Artifacts/results/Har.Benchmarks.Drift.DriftBenchmarks-report-github.md "$out/"
/usr/bin/python3 "$out/compare_scipy.py" > "$out/scipy-after.json"
/usr/bin/python3 - "$out" <<'PY'
import json, sys, os
out = sys.argv[1]
before = json.load(open(os.path.join(out, "scipy-before.json")))
after = json.load(open(os.path.join(out, "scipy-after.json")))
bdn = json.load(open("BenchmarkDotNet.Artifacts/results/Har.Benchmarks.Drift.DriftBenchmarks-report-full-compressed.json"))
ours = {}
for b in bdn["Benchmarks"]:
    ours[(b["MethodTitle"].strip("'"), b["Parameters"].split("=")[1])] = b["Statistics"]["Median"] / 1e9
rows = []
for n in ("1000000", "999983"):
    py_ks = min(before[f"ks_2samp/{n}"], after[f"ks_2samp/{n}"])
    py_psi = min(before[f"psi_count/{n}"], after[f"psi_count/{n}"])
    for desc, ref, name, target in [
        ("KS Har.Drift (both unsorted)", py_ks, "SciPy ks_2samp", 5),
        ("KS Har.Drift (pre-sorted reference)", py_ks, "SciPy ks_2samp", 10),
        ("PSI Har.Drift (cached edges, vectorised count + index)", py_psi, "NumPy searchsorted+bincount", 5)]:
        t = ours[(desc, n)]
        rows.append(f"| {desc} | {n} | {t*1e3:.2f} ms | {name} | {ref*1e3:.2f} ms | **{ref/t:.1f}x** | >= {target}x | {'met' if ref/t >= target else 'NOT met'} |")
md = ["# Har.Drift vs SciPy/NumPy (same run)", "",
      f"SciPy {before['scipy']}, NumPy {before['numpy']} (Debian /usr/bin/python3); .NET figures: BenchmarkDotNet ShortRun medians",
      "(Har.Benchmarks.Drift.DriftBenchmarks-report-github.md beside this file). Python figures: median of 7 (KS) / 25 (PSI)",
      "runs, the faster of a run just before and just after the .NET run. Shared 2-core machine, noisy.", "",
      "| ours | n | time | peer | peer time | speed-up | target | |", "|---|---:|---:|---|---:|---:|---:|---|"] + rows
open(os.path.join(out, "README-results.md"), "w").write("\n".join(md) + "\n")
print("\n".join(md))
PY
