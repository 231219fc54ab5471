#!/usr/bin/env bash
# 60 s load test of POST /v1/predict with wrk on loopback, and the in-process windows/s of the same
# packages (router + micro-batcher, no HTTP) measured in the same run. Prints a Markdown summary.
#   benchmarks/load/load.sh [seconds=60] [connections=16] [windows per request=8] [json|octet]
source "$(dirname "$0")/common.sh"
SECONDS_RUN=${1:-60}; CONNECTIONS=${2:-16}; WPR=${3:-8}; FORMAT=${4:-json}
build
make_bodies "$WPR" 64 >/dev/null
start_service
LOAD_AT_START=$(machine)

# Warm-up (JIT, ONNX Runtime arenas), then the measured run.
wrk -t2 -c"$CONNECTIONS" -d5s -s "$ROOT/benchmarks/load/predict.lua" "$URL" -- "$WORK/bodies" 64 "$FORMAT" "$WPR" >/dev/null
wrk -t2 -c"$CONNECTIONS" -d"${SECONDS_RUN}s" --timeout 10s -s "$ROOT/benchmarks/load/predict.lua" "$URL" -- "$WORK/bodies" 64 "$FORMAT" "$WPR" | tee "$WORK/wrk.txt"
RSS_KB=$(awk '/VmRSS/ {print $2}' "/proc/$SERVICE_PID/status")
kill "$SERVICE_PID"; wait "$SERVICE_PID" 2>/dev/null || true; SERVICE_PID=""

# In process, same machine, same run, same windows, same number of concurrent callers.
dotnet "$BASELINE_DLL" inprocess "$MODELS" "$WORK/bodies" "$WPR" "$CONNECTIONS" 20 | tee "$WORK/inprocess.txt"

get() { grep -m1 "^$1=" "$2" | cut -d= -f2- ; }
HTTP_WPS=$(python3 -c "print(f'{$(get requests_per_second "$WORK/wrk.txt") * $WPR:.0f}')")
INPROC_WPS=$(get inprocess_windows_per_second "$WORK/inprocess.txt")
RATIO=$(python3 -c "print(f'{100*$HTTP_WPS/$INPROC_WPS:.0f}')")
cat <<MD

### Load: $(date -u +%Y-%m-%dT%H:%MZ), ${SECONDS_RUN} s, ${CONNECTIONS} connections, ${WPR} windows per request ($FORMAT)

Machine: $LOAD_AT_START. Models: $MODELS_KIND.

| measure | value |
|---|---|
| requests | $(get requests "$WORK/wrk.txt") in $(get seconds "$WORK/wrk.txt") s ($(get requests_per_second "$WORK/wrk.txt")/s) |
| latency p50 / p90 / p99 / max | $(get p50_ms "$WORK/wrk.txt") / $(get p90_ms "$WORK/wrk.txt") / **$(get p99_ms "$WORK/wrk.txt")** / $(get max_ms "$WORK/wrk.txt") ms |
| errors | $(get errors "$WORK/wrk.txt") |
| windows/s over HTTP | $HTTP_WPS |
| windows/s in process (StreamPredictionPipeline.PredictAsync, ${CONNECTIONS} callers) | $INPROC_WPS |
| HTTP / in process | **${RATIO} %** |
| service RSS after the run | $((RSS_KB / 1024)) MiB |
MD
