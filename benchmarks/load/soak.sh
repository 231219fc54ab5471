#!/usr/bin/env bash
# Soak: wrk on POST /v1/predict for 10 minutes while sampling the service's RSS every 10 s; reports the
# growth between minute 1 and minute 10 (target < 10 %). Prints a Markdown summary.
#   benchmarks/load/soak.sh [minutes=10] [connections=8] [windows per request=8] [json|octet]
source "$(dirname "$0")/common.sh"
MINUTES=${1:-10}; CONNECTIONS=${2:-8}; WPR=${3:-8}; FORMAT=${4:-json}
build
make_bodies "$WPR" 64 >/dev/null
start_service
LOAD_AT_START=$(machine)

wrk -t2 -c"$CONNECTIONS" -d"$((MINUTES * 60))s" --timeout 10s -s "$ROOT/benchmarks/load/predict.lua" "$URL" -- "$WORK/bodies" 64 "$FORMAT" "$WPR" >"$WORK/wrk.txt" &
WRK_PID=$!
: >"$WORK/rss.tsv"
for i in $(seq 1 $((MINUTES * 6))); do
  sleep 10
  echo "$((i * 10)) $(awk '/VmRSS/ {print $2}' "/proc/$SERVICE_PID/status")" >>"$WORK/rss.tsv"
done
wait "$WRK_PID" || true
cat "$WORK/wrk.txt"

get() { grep -m1 "^$1=" "$2" | cut -d= -f2- ; }
read -r M1 M10 MAX <<<"$(python3 - "$WORK/rss.tsv" "$MINUTES" <<'PY'
import sys
rows = [tuple(map(int, l.split())) for l in open(sys.argv[1]) if l.strip()]
minutes = int(sys.argv[2])
def at(sec): return min(rows, key=lambda r: abs(r[0] - sec))[1]
print(at(60), at(minutes * 60), max(r[1] for r in rows))
PY
)"
GROWTH=$(python3 -c "print(f'{100*($M10-$M1)/$M1:+.1f}')")
SERIES=$(awk '{printf "%s%d", (NR>1?", ":""), $2/1024}' "$WORK/rss.tsv")
cat <<MD

### Soak: $(date -u +%Y-%m-%dT%H:%MZ), ${MINUTES} min, ${CONNECTIONS} connections, ${WPR} windows per request ($FORMAT)

Machine: $LOAD_AT_START. Models: $MODELS_KIND.

| measure | value |
|---|---|
| requests | $(get requests "$WORK/wrk.txt") ($(get requests_per_second "$WORK/wrk.txt")/s), errors: $(get errors "$WORK/wrk.txt") |
| latency p50 / p99 | $(get p50_ms "$WORK/wrk.txt") / $(get p99_ms "$WORK/wrk.txt") ms |
| RSS at minute 1 | $((M1 / 1024)) MiB |
| RSS at minute ${MINUTES} | $((M10 / 1024)) MiB |
| growth minute 1 → ${MINUTES} | **${GROWTH} %** |
| peak RSS | $((MAX / 1024)) MiB |

RSS every 10 s (MiB): $SERIES
MD
